"""Every event kind is declared once (oob.events.EventKind), every emitter uses a declared
kind, and README's table of events is the declaration's."""

from __future__ import annotations

import ast
from pathlib import Path

from oob.events import EventKind, Level, event_table

REPO = Path(__file__).resolve().parents[2]


def _emitted() -> list[tuple[str, object, object]]:
    """(file, level, kind) of every Event(...) and DumpEvent kind written in oob/."""
    found: list[tuple[str, object, object]] = []
    for path in sorted((REPO / "oob").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Event":
                args = {i: a for i, a in enumerate(node.args)}
                keywords = {k.arg: k.value for k in node.keywords}
                found.append(
                    (str(path), args.get(0, keywords.get("level")), args.get(3, keywords.get("kind")))
                )
            dump_event = path.name == "events.py" and path.parent.name == "dump"
            if (
                dump_event
                and isinstance(node, ast.AnnAssign)
                and getattr(node.target, "id", None) == "kind"
                and node.value
            ):
                found.append((str(path), None, node.value))
    return found


def _value(node: object) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in ("EventKind", "Level")
    ):
        return str((EventKind if node.value.id == "EventKind" else Level)[node.attr])
    return None  # computed (e.g. EventKind(f"power.{action}")): checked at run time


def test_every_emitted_kind_and_level_is_declared() -> None:
    emitted = _emitted()
    assert len(emitted) > 20
    kinds = {k.value for k in EventKind}
    for path, level, kind in emitted:
        if (value := _value(kind)) is not None:
            assert value in kinds, f"{path}: event kind '{value}' is not declared in oob.events.EventKind"
        if (value := _value(level)) is not None:
            assert value in {lv.value for lv in Level}, f"{path}: level '{value}'"


def test_readme_lists_exactly_the_declared_events() -> None:
    readme = (REPO / "README.md").read_text()
    assert event_table() in readme, "README's table of events is stale: paste `python -m oob.events`"


def test_power_kinds_cover_every_power_action() -> None:
    from oob.model import PowerAction

    for action in PowerAction:
        assert EventKind(f"power.{action.value}")
