"""Rendering of ``oob preflight``: a host-by-check table with the reasons, or JSON lines.

The reasons quote what the host and its BMC said (sysctl values, kdump.conf lines, the
BMC's messages): shown through :mod:`oob.render.text` (escaped, never markup)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from oob.events import Event
from oob.preflight.checks import HOST_CHECK_NAMES
from oob.render.base import Renderer
from oob.runbook.preflight import BMC_CHECK_NAMES

if TYPE_CHECKING:
    from rich.text import Text

#: what --json writes to stdout: one ``readiness`` object per host, then ``summary``
PREFLIGHT_EVENTS = frozenset({"readiness", "summary"})
COLUMNS: tuple[str, ...] = (*BMC_CHECK_NAMES, *HOST_CHECK_NAMES)
#: a check status as a table cell: (word, style)
_CELL = {"ok": ("ok", "green"), "warn": ("warn", "yellow"), "fail": ("FAIL", "red"), "skip": ("-", "")}


def make_preflight_renderer(json_output: bool) -> PreflightJson | PreflightConsole:
    return PreflightJson() if json_output else PreflightConsole()


class PreflightJson(Renderer[Any]):
    def __init__(self) -> None:
        from oob.render.dump import JsonLines

        self._lines = JsonLines(PREFLIGHT_EVENTS)

    def event(self, event: Event) -> None:
        self._lines.event(event)

    def report(self, report: Any) -> None:
        """Everything was written as it came."""


class PreflightConsole(Renderer[Any]):
    def __init__(self) -> None:
        from oob.render.console import make_console

        self.err = make_console(stderr=True)
        self.out = make_console(stderr=False)

    def event(self, event: Event) -> None:
        from oob.render.text import safe

        if event.kind in ("readiness", "summary"):
            return
        prefix = f"{event.host}: " if event.host else ""
        style = {"warning": "yellow", "error": "red"}.get(event.level, "")
        self.err.print(safe(f"{prefix}{event.message}", style))

    def report(self, report: Any) -> None:
        from rich.table import Table

        from oob.render.text import cell, safe

        grid = Table(box=None, pad_edge=False, header_style="bold")
        grid.add_column("HOST")
        grid.add_column("READY")
        for name in COLUMNS:
            grid.add_column(name.upper().replace("_", " "))
        for host in report.hosts:
            cells = []
            for name in COLUMNS:
                check = host.check(name)
                cells.append(_status(check.status) if check is not None else cell(None))
            ready = safe("yes", "green") if host.ready else safe("NO", "red")
            grid.add_row(cell(host.host), ready, *cells)
        self.out.print(grid)
        reasons = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("HOST", "CHECK", "STATUS", "WHY"):
            reasons.add_column(column, overflow="fold")
        rows = 0
        for host in report.hosts:
            for check in host.checks:
                if check.status in ("warn", "fail") or (
                    check.name in ("crashkernel", "nmi") and check.status == "ok"
                ):
                    why = check.reason + (" [needs root]" if check.needs_root else "")
                    reasons.add_row(
                        cell(host.host), cell(check.name), _status(check.status), cell(why, empty="")
                    )
                    rows += 1
        if rows:
            self.out.print()
            self.out.print(reasons)
        needed = [(h.host, [c.name for c in h.checks if c.needs_root]) for h in report.hosts]
        for host, names in needed:
            if names:
                self.out.print(safe(f"{host}: needed root for {', '.join(names)}"))
        summary = report.summary()
        self.out.print()
        self.out.print(safe(f"{summary['ready']} of {summary['hosts']} host(s) ready"))
        sys.stdout.flush()


def _status(status: str) -> Text:
    from oob.render.text import safe

    word, style = _CELL.get(status, (status, ""))
    return safe(word, style)
