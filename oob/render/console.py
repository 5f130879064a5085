"""Human output: messages and progress on stderr, the result table on stdout."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from oob.events import Event
from oob.runbook.common import Outcome

_STYLE = {"warning": "yellow", "error": "bold red", "progress": "cyan", "info": "green"}
_STATUS_STYLE = {"ok": "green", "dry-run": "cyan", "failed": "red", "refused": "yellow", "unknown": "bold red"}


def make_console(stderr: bool) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # piped into a file or grep: do not squeeze tables into 80 columns
    width = None if stream.isatty() else 1000
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


class ConsoleRenderer:
    def __init__(self) -> None:
        self.err = make_console(stderr=True)
        self.out = make_console(stderr=False)

    def event(self, event: Event) -> None:
        from rich.markup import escape

        prefix = f"{event.host}: " if event.host else ""
        label = {"warning": "warning: ", "error": "error: "}.get(event.level, "")
        style = _STYLE.get(event.level, "")
        self.err.print(f"[{style}]{escape(prefix + label + event.message)}[/]" if style else escape(prefix + event.message))

    def message(self, text: str) -> None:
        from rich.markup import escape

        self.err.print(escape(text))

    def outcomes(self, outcomes: Sequence[Outcome], columns: Sequence[tuple[str, str]] = ()) -> None:
        from rich.table import Table

        table = Table(box=None, pad_edge=False, header_style="bold")
        table.add_column("HOST")
        table.add_column("STATUS")
        table.add_column("VIA")
        for _, title in columns:
            table.add_column(title)
        table.add_column("DETAIL", overflow="fold")
        for outcome in outcomes:
            cells = [_cell(outcome.detail.get(key)) for key, _ in columns]
            style = _STATUS_STYLE.get(outcome.status, "")
            table.add_row(
                outcome.host,
                f"[{style}]{outcome.status}[/]" if style else outcome.status,
                outcome.via or "-",
                *cells,
                _detail(outcome),
            )
        self.out.print(table)


def _cell(value: object) -> str:
    from rich.markup import escape

    return "-" if value is None or value == "" else escape(str(value))


def _detail(outcome: Outcome) -> str:
    from rich.markup import escape

    parts: list[str] = []
    if outcome.error is not None:
        parts.append(str(outcome.error.message))
        if outcome.error.bmc_message:
            parts.append(f"BMC says: {outcome.error.bmc_message}")
    elif outcome.detail.get("bmc_message"):
        parts.append(f"BMC says: {outcome.detail['bmc_message']}")
    if outcome.fallback_reason:
        parts.append(f"fallback because {outcome.fallback_reason}")
    return escape("; ".join(parts))


def print_plain(text: str) -> None:
    sys.stdout.write(text + "\n")
