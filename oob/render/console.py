"""Human output: messages and progress on stderr, the result table on stdout.

Event messages, host names, error messages and the BMC's own words are outside text:
everything printed here goes through :mod:`oob.render.text` (escaped, never markup).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from oob.events import Event
from oob.render.base import Renderer
from oob.runbook.common import Outcome

if TYPE_CHECKING:
    from rich.text import Text

_STYLE = {"warning": "yellow", "error": "bold red", "progress": "cyan", "info": "green"}
_STATUS_STYLE = {
    "ok": "green",
    "dry-run": "cyan",
    "failed": "red",
    "refused": "yellow",
    "unknown": "bold red",
}


def make_console(stderr: bool) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # piped into a file or grep: do not squeeze tables into 80 columns
    width = None if stream.isatty() else 1000
    # markup and emoji off: a str printed by mistake is shown as it is, never interpreted;
    # styles come only from the Text objects the renderers build (oob.render.text)
    return Console(stderr=stderr, highlight=False, markup=False, emoji=False, soft_wrap=True, width=width)


class ConsoleRenderer(Renderer[Sequence[Outcome]]):
    """Per-host outcomes as a table; ``columns`` (detail key, title) adds columns."""

    def __init__(self, columns: Sequence[tuple[str, str]] = ()) -> None:
        self.err = make_console(stderr=True)
        self.out = make_console(stderr=False)
        self.columns = tuple(columns)

    def event(self, event: Event) -> None:
        from oob.render.text import safe

        prefix = f"{event.host}: " if event.host else ""
        label = {"warning": "warning: ", "error": "error: "}.get(event.level, "")
        self.err.print(safe(prefix + label + event.message, _STYLE.get(event.level, "")))

    def message(self, text: str) -> None:
        from oob.render.text import safe_lines

        self.err.print(safe_lines(text.split("\n")))

    def report(self, report: Sequence[Outcome]) -> None:
        outcomes, columns = report, self.columns
        from rich.table import Table

        from oob.render.text import cell

        table = Table(box=None, pad_edge=False, header_style="bold")
        table.add_column("HOST")
        table.add_column("STATUS")
        table.add_column("VIA")
        for _, title in columns:
            table.add_column(title)
        table.add_column("DETAIL", overflow="fold")
        for outcome in outcomes:
            table.add_row(
                cell(outcome.host),
                cell(outcome.status, _STATUS_STYLE.get(outcome.status, "")),
                cell(outcome.via),
                *(cell(outcome.detail.get(key)) for key, _ in columns),
                _detail(outcome),
            )
        self.out.print(table)


def _detail(outcome: Outcome) -> Text:
    from oob.render.text import safe

    parts: list[str] = []
    if outcome.error is not None:
        parts.append(str(outcome.error.message))
        if outcome.error.bmc_message:
            parts.append(f"BMC says: {outcome.error.bmc_message}")
    elif outcome.detail.get("bmc_message"):
        parts.append(f"BMC says: {outcome.detail['bmc_message']}")
    if outcome.fallback_reason:
        parts.append(f"fallback because {outcome.fallback_reason}")
    return safe("; ".join(parts))


def print_plain(text: str) -> None:
    from oob.safetext import printable

    sys.stdout.write(printable(text, keep_newlines=True) + "\n")
