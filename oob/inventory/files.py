"""Reading an inventory file: TOML or YAML to Python data, with a way back to line numbers.

Syntax errors become one line ``FILE:LINE: ... syntax error: PROBLEM``.  The offending text is
never quoted (it may be a password), only its position.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from oob.errors import InventoryError
from oob.inventory.schema import KeyPath, Source, VaultValue

Locator = Callable[[KeyPath], int | None]
SUFFIXES: dict[str, str] = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}


def read_inventory_file(path: Path) -> tuple[Any, Source]:
    """Parse ``path``; return its data (``None`` for an empty YAML file) and its :class:`Source`."""
    label = str(path)
    try:
        with open(path, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            raw = handle.read()
    except FileNotFoundError:
        raise InventoryError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise InventoryError(f"{label}: is a directory, not an inventory file") from None
    except PermissionError:
        raise InventoryError(f"{label}: cannot read the file: permission denied") from None
    except OSError as exc:
        raise InventoryError(f"{label}: cannot read the file: {exc.strerror}") from None
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InventoryError(
            f"{label}: unsupported inventory file type '{path.suffix or '(none)'}'; expected .toml, .yaml "
            "or .yml (Ansible INI inventories are not supported: use their YAML form)"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InventoryError(f"{label}: not UTF-8 text (bad byte at offset {exc.start})") from None
    text = text.removeprefix("\ufeff")
    base_dir = Path(os.path.abspath(path)).parent
    if fmt == "toml":
        return _load_toml(label, text), Source(label, base_dir, mode, toml_locator(text))
    data, locate = _load_yaml(label, text)
    return data, Source(label, base_dir, mode, locate)


# --- TOML ------------------------------------------------------------------------------------

_TOML_POSITION = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)$")


def _load_toml(label: str, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        position = _TOML_POSITION.search(message)
        problem = message[: position.start()] if position else message
        if position and position.group(1):
            where = f"{label}:{position.group(1)}"
            problem = f"{problem} (column {position.group(2)})"
        else:
            where = label
        raise InventoryError(f"{where}: TOML syntax error: {problem}") from None


_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_HEADER = re.compile(rf"\[\[?\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_ASSIGN = re.compile(rf"({_DOTTED})\s*=")


def _split_dotted(dotted: str) -> tuple[str, ...]:
    return tuple(part[1:-1] if part[0] in "\"'" else part for part in re.findall(_KEY_PART, dotted))


def toml_locator(text: str) -> Locator:
    """Best-effort line of a key path in TOML text (tomllib does not keep positions).

    Understands table headers and (dotted) keys; the line of an exact match wins, then the first
    line inside the path (a host's header), then the closest enclosing key (an inline table).
    """

    def locate(path: KeyPath) -> int | None:
        target = tuple(str(part) for part in path)
        table: tuple[str, ...] = ()
        inside: int | None = None
        enclosing: tuple[int, int | None] = (0, None)
        for number, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            header = _HEADER.match(stripped)
            if header:
                table = _split_dotted(header.group(1))
                full = table
            else:
                assign = _ASSIGN.match(stripped)
                if not assign:
                    continue
                full = table + _split_dotted(assign.group(1))
            if full == target:
                return number
            if inside is None and full[: len(target)] == target:
                inside = number
            elif len(full) < len(target) and target[: len(full)] == full and len(full) > enclosing[0]:
                enclosing = (len(full), number)
        return inside if inside is not None else enclosing[1]

    return locate


# --- YAML ------------------------------------------------------------------------------------


@functools.cache
def _yaml_loader() -> Any:
    import yaml

    class Loader(yaml.SafeLoader):  # type: ignore[misc]
        """SafeLoader that reports duplicate keys and reads Ansible's ``!vault``/``!unsafe`` tags."""

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):
                seen: set[str] = set()
                for key_node, _ in node.value:
                    if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    if key_node.value in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"duplicate key '{key_node.value}'", key_node.start_mark
                        )
                    seen.add(key_node.value)
            return super().construct_mapping(node, deep=deep)

    Loader.add_constructor("!vault", lambda loader, node: VaultValue())
    Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
    return Loader


def _load_yaml(label: str, text: str) -> tuple[Any, Locator]:
    import yaml

    loader = _yaml_loader()(text)
    try:
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{label}:{mark.line + 1}" if mark else label
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context:
            # "while parsing a block mapping" reads as a note; "expected a single document" as a start
            if exc.context.startswith("while"):
                problem = f"{exc.problem} ({exc.context})"
            else:
                problem = f"{exc.context} {exc.problem}"
        raise InventoryError(f"{where}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise InventoryError(f"{label}: YAML error: {reason}") from None
    finally:
        loader.dispose()
    return data, yaml_locator(node)


def yaml_locator(root: Any) -> Locator:
    """Line of the last key of a path that exists in the YAML node tree."""
    import yaml

    def locate(path: KeyPath) -> int | None:
        node, line = root, None
        for part in path:
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                        line, node = key_node.start_mark.line + 1, value_node
                        break
                else:
                    return line
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                return line
        return line

    return locate
