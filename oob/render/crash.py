"""Rendering of ``oob crash``: live progress and a report table, or JSON event lines.

Host names, BMC addresses, dump locations, panic lines and error messages are outside
text: shown through :mod:`oob.render.text` (escaped, never markup)."""

from __future__ import annotations

from typing import Any

from oob.events import Event
from oob.render.base import Renderer

#: what --json writes to stdout, one object per line
CRASH_EVENTS = frozenset(
    {
        "preflight",
        "refused",
        "nmi_sending",
        "nmi_sent",
        "nmi_outcome_unknown",
        "dump_dir_appeared",
        "dump_progress",
        "dump_complete",
        "dump_stalled",
        "dump_failed",
        "timeout",
        "host_back",
        "host_not_back",
        "recovered",
        "failed",
        "summary",
        "interrupted",
    }
)


def make_crash_renderer(json_output: bool, hosts: list[str]) -> CrashJson | CrashConsole:
    return CrashJson() if json_output else CrashConsole(hosts)


class CrashJson(Renderer[Any]):
    def __init__(self) -> None:
        from oob.render.dump import JsonLines

        self._lines = JsonLines(CRASH_EVENTS)

    def event(self, event: Event) -> None:
        self._lines.event(event)

    def report(self, report: Any) -> None:
        from oob.render.jsonl import write_json

        for outcome in report.outcomes:
            write_json({"event": "result", **outcome.to_dict()})


class CrashConsole(Renderer[Any]):
    """Live progress per host on a terminal (the watch renderer), plain lines otherwise."""

    def __init__(self, hosts: list[str]) -> None:
        from oob.render.dump import LiveConsole

        self._console = LiveConsole(hosts)
        self._live = False

    def __exit__(self, *exc: object) -> None:
        if self._live:
            self._console.__exit__(*exc)

    def event(self, event: Event) -> None:
        if event.kind == "nmi_sent" and not self._live:
            # the progress bars start with the watch, after the confirmation prompt
            self._console.__enter__()
            self._live = True
        if event.kind == "summary":
            return
        self._console.event(event)

    def message(self, text: str) -> None:
        from oob.render.text import safe_lines

        self._console.err.print(safe_lines(text.split("\n")))

    def report(self, report: Any) -> None:
        from rich.table import Table

        from oob.dump.events import human_bytes
        from oob.render.text import cell

        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in (
            "HOST",
            "STATUS",
            "BMC",
            "VIA",
            "NMI AT",
            "DUMP",
            "SIZE",
            "FORMAT",
            "NMI→COMPLETE",
            "PANIC / WHY",
        ):
            table.add_column(column, overflow="fold")
        styles = {"complete": "green", "dry-run": "cyan", "refused": "yellow"}
        for outcome in report.outcomes:
            dump = outcome.dump
            where = dump.location if dump is not None else None
            if dump is not None and dump.ok:
                why = dump.panic.panic_line or ""
            elif outcome.error is not None:
                why = outcome.error.message
            elif dump is not None:
                why = dump.message
            else:
                why = ""
            why = "; ".join(part for part in (why, *outcome.notes) if part)
            table.add_row(
                cell(outcome.host),
                cell(outcome.status, styles.get(outcome.status, "red")),
                cell(outcome.bmc),
                cell(outcome.via),
                cell(outcome.nmi_at),
                cell(where),
                cell(human_bytes(dump.size) if dump is not None and dump.size else None),
                cell(dump.format.label if dump is not None and dump.format else None),
                cell(
                    _minutes(dump.seconds)
                    if dump is not None and dump.ok and dump.seconds is not None
                    else None
                ),
                cell(why, empty=""),
            )
        self._console.out.print(table)


def _minutes(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"
