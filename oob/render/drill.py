"""Rendering of ``oob drill``: the crash renderers, plus readiness and the sysrq trigger.

Like the crash renderers, everything from a host or its dump is shown through
:mod:`oob.render.text` (escaped, never markup)."""

from __future__ import annotations

from typing import Any

from oob.render.crash import CRASH_EVENTS, CrashConsole, CrashJson

DRILL_EVENTS = CRASH_EVENTS | {"readiness", "sysrq_sending", "sysrq_sent"}


def make_drill_renderer(json_output: bool, hosts: list[str]) -> DrillJson | DrillConsole:
    return DrillJson() if json_output else DrillConsole(hosts)


class DrillJson(CrashJson):
    def __init__(self) -> None:
        from oob.render.dump import JsonLines

        self._lines = JsonLines(DRILL_EVENTS)

    def report(self, report: Any) -> None:
        from oob.render.jsonl import write_json

        for outcome in report.outcomes:
            write_json({"event": "result", **outcome.to_dict()})


class DrillConsole(CrashConsole):
    def event(self, event: Any) -> None:
        if event.kind == "readiness":
            from oob.render.text import safe

            # one line: the reasons quote the host, whose newlines must not start lines of ours
            ready = bool(event.data.get("ready"))
            self._console.err.print(safe(f"{event.host}: {'ready' if ready else event.message}"))
            return
        if event.kind == "sysrq_sent" and not self._live:
            self._console.__enter__()
            self._live = True
        super().event(event)

    def report(self, report: Any) -> None:
        from rich.table import Table

        from oob.dump.events import human_bytes
        from oob.render.text import cell

        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("HOST", "DRILL", "METHOD", "AT", "DUMP", "SIZE", "→COMPLETE", "→BACK", "PANIC / WHY"):
            table.add_column(column, overflow="fold")
        styles = {"pass": "green", "refused": "yellow", "dry-run": "cyan"}
        for outcome in report.outcomes:
            data = outcome.to_dict()
            crash, dump = outcome.crash, outcome.crash.dump
            if dump is not None and dump.ok:
                why = dump.panic.panic_line or ""
            elif crash.error is not None:
                why = crash.error.message
            else:
                why = dump.message if dump is not None else ""
            why = "; ".join(part for part in (why, *crash.notes) if part)
            timings = outcome.timings()
            table.add_row(
                cell(crash.host),
                cell(data["drill"], styles.get(data["drill"], "red")),
                cell(outcome.method),
                cell(crash.nmi_at),
                cell(dump.location if dump is not None else None),
                cell(human_bytes(dump.size) if dump is not None and dump.size else None),
                cell(_seconds(timings["trigger_to_complete_s"])),
                cell(_seconds(timings["trigger_to_back_s"])),
                cell(why, empty=""),
            )
        self._console.out.print(table)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"
