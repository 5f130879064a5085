"""Rendering of ``oob crash``: live progress and a report table, or JSON event lines.

Host names, BMC addresses, dump locations, panic lines and error messages are outside
text: shown through :mod:`oob.render.text` (escaped, never markup)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Self

from oob.events import Event
from oob.render.base import Renderer
from oob.render.dump import DUMP_EVENTS

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

#: what --json writes to stdout, one object per line: the watch's events and the runbook's
CRASH_EVENTS = DUMP_EVENTS | {
    "preflight",
    "refused",
    "nmi_sending",
    "nmi_sent",
    "nmi_outcome_unknown",
    "host_back",
    "host_not_back",
    "powered_off_after_dump",
    "recovered",
    "failed",
    "summary",
    "interrupted",
}


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
    """The live view per host on a terminal (:mod:`oob.render.live`), plain lines
    otherwise; the report as a table that fits and a block per host
    (:mod:`oob.render.report`)."""

    def __init__(self, hosts: list[str], out: Console | None = None, err: Console | None = None) -> None:
        from oob.render.dump import LiveConsole

        self._console = LiveConsole(hosts, out=out, err=err, watch_only=False)

    def __enter__(self) -> Self:
        self._console.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._console.__exit__(*exc)

    def paused(self) -> AbstractContextManager[None]:
        return self._console.paused()

    def event(self, event: Event) -> None:
        self._console.event(event)

    def message(self, text: str) -> None:
        self._console.message(text)

    def report(self, report: Any) -> None:
        from oob.dump.events import human_bytes
        from oob.render.report import Column, fitted_table, print_blocks
        from oob.render.text import cell

        out = self._console.out
        columns = (
            Column("HOST"),
            Column("STATUS"),
            Column("VIA", drop=3),
            Column("NMI AT", drop=4),
            Column("SIZE", drop=2, justify="right"),
            Column("FORMAT", drop=5),
            Column("NMI→DUMP", drop=1, justify="right"),
            Column("CAUSE / WHY", drop=9),
        )
        rows = []
        blocks = []
        for outcome in report.outcomes:
            dump = outcome.dump
            style = _STATUS_STYLE.get(outcome.status, "red")
            ok = dump is not None and dump.ok
            why = outcome_why(outcome)
            rows.append(
                (
                    cell(outcome.host),
                    cell(outcome.status, style),
                    cell(outcome.via),
                    cell(clock_time(outcome.nmi_at)),
                    cell(human_bytes(dump.size) if dump is not None and dump.size else None),
                    cell(dump.format.kind if dump is not None and dump.format else None),
                    cell(_minutes(dump.seconds) if ok and dump.seconds is not None else None),
                    cell("; ".join(part for part in (why, *outcome.notes) if part), empty=""),
                )
            )
            blocks.append(
                (block_title(outcome.host, outcome.status, style, outcome.via), crash_pairs(outcome))
            )
        out.print(fitted_table(out, columns, rows))
        print_blocks(out, blocks)


_STATUS_STYLE = {"complete": "green", "dry-run": "cyan", "refused": "yellow", "pass": "green"}


def outcome_why(outcome: Any) -> str:
    """The panic line of a complete dump, or why there is none."""
    from oob.render.analysis import cause

    dump = outcome.dump
    if dump is not None and dump.ok:
        return cause(dump.analysis) or str(dump.panic.panic_line or "")
    if outcome.error is not None:
        return str(outcome.error.message)
    return str(dump.message) if dump is not None else ""


def crash_pairs(outcome: Any) -> list[tuple[str, object]]:
    """A crash outcome's ``key: value`` lines (None: left out)."""
    from oob.dump.events import human_bytes
    from oob.render.analysis import analysis_pairs, bmc_log_pairs

    dump = outcome.dump
    ok = dump is not None and dump.ok
    size = None
    if dump is not None and dump.size:
        size = human_bytes(dump.size) + (f" {dump.format.label}" if dump.format else "")
        if ok and dump.seconds is not None:
            size += f", complete {_minutes(dump.seconds)} after the NMI"
    pairs: list[tuple[str, object]] = [
        ("bmc", outcome.bmc),
        ("fallback", outcome.fallback_reason),
        ("nmi at", outcome.nmi_at),
        ("kdump started", getattr(outcome, "kdump_started", None)),
        ("dump", dump_location(dump) if dump is not None else None),
        ("size", size),
    ]
    if ok:
        pairs += analysis_pairs(dump.analysis)
        pairs.append(("panic", dump.panic.panic_line))
    else:
        pairs.append(("why", outcome_why(outcome)))
    if outcome.host_back is not None:
        back = "yes" if outcome.host_back else "no"
        if outcome.back_after_s is not None:
            back += f", {_minutes(outcome.back_after_s)} after the NMI"
        pairs.append(("host back", back))
    if outcome.recovered:
        pairs.append(("recovered", "power-cycled through the BMC"))
    if dump is not None and not ok:
        pairs += [("kdump", line) for line in dump.details]
    console = getattr(outcome, "console", None)
    if console is not None and console.path is not None:
        pairs.append(("console", f"{console.path}" + (f" ({console.problem})" if console.problem else "")))
        if console.problem or not ok:
            pairs += [("console", line) for line in console.last_lines[-10:]]
    pairs += bmc_log_pairs(getattr(outcome, "bmc_log", None))
    pairs += [("warning", warning) for warning in outcome.warnings]
    pairs += [("note", note) for note in outcome.notes]
    return pairs


def block_title(host: str, status: str, style: str, via: str | None) -> Text:
    """``web01: complete, NMI via redfish`` (the status in its style)."""
    from rich.text import Text

    from oob.render.text import safe

    return Text.assemble(safe(f"{host}: "), safe(status, style), safe(f", NMI via {via}" if via else ""))


def dump_location(dump: Any) -> str | None:
    """Where to fetch the dump from: its vmcore, or its directory."""
    where = dump.location or dump.path
    if where and dump.vmcore:
        return f"{where}/{dump.vmcore}"
    return str(where) if where else None


def clock_time(iso: str | None) -> str | None:
    """``03:27:29`` for the table (the block has the whole timestamp)."""
    from datetime import datetime

    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso).strftime("%H:%M:%S")
    except ValueError:
        return iso


def _minutes(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"
