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
        super().event(event)

    def report(self, report: Any) -> None:
        from oob.dump.events import human_bytes
        from oob.render.crash import _STATUS_STYLE, block_title, clock_time, crash_pairs, outcome_why
        from oob.render.report import Column, fitted_table, print_blocks
        from oob.render.text import cell

        out = self._console.out
        columns = (
            Column("HOST"),
            Column("DRILL"),
            Column("METHOD", drop=3),
            Column("AT", drop=4),
            Column("SIZE", drop=2, justify="right"),
            Column("→COMPLETE", drop=1, justify="right"),
            Column("→BACK", drop=1, justify="right"),
            Column("CAUSE / WHY", drop=9),
        )
        rows = []
        blocks = []
        for outcome in report.outcomes:
            data = outcome.to_dict()
            crash, dump = outcome.crash, outcome.crash.dump
            style = _STATUS_STYLE.get(data["drill"], "red")
            why = "; ".join(part for part in (outcome_why(crash), *crash.notes) if part)
            timings = outcome.timings()
            rows.append(
                (
                    cell(crash.host),
                    cell(data["drill"], style),
                    cell(outcome.method),
                    cell(clock_time(crash.nmi_at)),
                    cell(human_bytes(dump.size) if dump is not None and dump.size else None),
                    cell(_seconds(timings["trigger_to_complete_s"])),
                    cell(_seconds(timings["trigger_to_back_s"])),
                    cell(why, empty=""),
                )
            )
            via = crash.via if outcome.method != "sysrq" else None
            title = block_title(crash.host, f"{data['drill']} ({crash.status})", style, via)
            blocks.append((title, [("method", outcome.method), *crash_pairs(crash)]))
        out.print(fitted_table(out, columns, rows))
        print_blocks(out, blocks)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"
