"""The live view: one row per host, redrawn in place, from events only.

Each host has exactly one :class:`HostRow`; an event moves it from one state to the next
(planning → NMI sent → waiting for kdump → writing → complete, or refused, stalled,
failed, interrupted, ...).  The whole table is drawn again from the rows at every refresh
by a rich ``Live`` on stderr, so a host never gets a second row and nothing is appended
below the view but the lines of events the rows do not show (warnings, retries).  The view
is transient: once it stops, the report takes its place.

A bar is drawn only when an event gives the dump's total size (``total``): makedumpfile's
output size is not known in advance, so a dump being written shows its bytes and rate.

Runbooks emit from several threads (one per host, and the dump watcher's loop): the rows
are changed and drawn under one lock.  Host names, reasons and messages are outside text:
shown through :mod:`oob.render.text` (escaped, never markup).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from oob.events import Event, EventKind

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

#: events a row says all of; any other event is also printed as a line above the view
#: (where a dump appeared, its panic lines, why a host was refused or failed: whole and
#: copyable, where a row may have to shorten them)
ROW_ONLY = frozenset(
    {
        EventKind.PREFLIGHT,
        EventKind.NMI_SENDING,
        EventKind.NMI_SENT,
        EventKind.SYSRQ_SENDING,
        EventKind.SYSRQ_SENT,
        EventKind.DUMP_PROGRESS,
        EventKind.HOST_BACK,
        EventKind.SUMMARY,
    }
)
#: events that change a row
ROW_KINDS = frozenset(
    {
        EventKind.PREFLIGHT,
        EventKind.REFUSED,
        EventKind.NMI_SENDING,
        EventKind.NMI_SENT,
        EventKind.NMI_OUTCOME_UNKNOWN,
        EventKind.SYSRQ_SENDING,
        EventKind.SYSRQ_SENT,
        EventKind.DUMP_DIR_APPEARED,
        EventKind.KDUMP_STARTED,
        EventKind.DUMP_PROGRESS,
        EventKind.DUMP_STALLED,
        EventKind.DUMP_COMPLETE,
        EventKind.DUMP_FAILED,
        EventKind.TIMEOUT,
        EventKind.DUMP_INTERRUPTED,
        EventKind.HOST_BACK,
        EventKind.HOST_NOT_BACK,
        EventKind.POWERED_OFF_AFTER_DUMP,
        EventKind.RECOVERED,
        EventKind.FAILED,
        EventKind.INTERRUPTED,
        EventKind.SUMMARY,
    }
)

#: a row's state word and its style
_STYLE = {
    "planning": "dim",
    "ready": "",
    "refused": "yellow",
    "sending NMI": "bold",
    "triggering": "bold",
    "NMI unknown": "bold red",
    "waiting": "cyan",
    "writing": "cyan",
    "stalled": "yellow",
    "complete": "green",
    "failed": "red",
    "timeout": "red",
    "interrupted": "yellow",
    "recovered": "yellow",
}
#: states after which nothing but the host's return changes the row
FINAL = frozenset({"refused", "complete", "failed", "timeout", "interrupted", "recovered"})


@dataclass
class HostRow:
    """What the view knows about one host."""

    host: str
    state: str
    detail: str = ""
    #: monotonic time the clock of the row counts from (the trigger, or the watch's start)
    since: float | None = None
    #: monotonic time the row reached a final state (its clock stops)
    until: float | None = None
    bytes: int | None = None
    rate: float | None = None
    total: int | None = None

    def elapsed(self, now: float) -> float | None:
        if self.since is None:
            return None
        return (self.until if self.until is not None else now) - self.since

    def settle(self, state: str, detail: str, now: float) -> None:
        self.state, self.detail = state, detail
        if self.until is None:
            self.until = now


def apply(row: HostRow, event: Event, now: float) -> None:
    """Moves ``row`` on by ``event`` (an event of the row's host, or the run's interrupt)."""
    from oob.dump.events import human_bytes

    kind, data = event.kind, event.data
    if kind == EventKind.PREFLIGHT:
        # the plan: its method and the power state the BMC reported
        parts = [
            f"via {data['via']}" if data.get("via") else "",
            f"power {data['power']}" if data.get("power") else "",
        ]
        row.state, row.detail = "ready", ", ".join(part for part in parts if part)
    elif kind == EventKind.REFUSED:
        row.settle("refused", event.message, now)
    elif kind == EventKind.NMI_SENDING:
        row.state, row.detail = "sending NMI", ""
    elif kind == EventKind.SYSRQ_SENDING:
        row.state, row.detail = "triggering", "sysrq over SSH"
    elif kind in (EventKind.NMI_SENT, EventKind.SYSRQ_SENT):
        via = data.get("via")
        row.state, row.detail = "waiting", "for kdump" + (f" (NMI via {via})" if via else "")
        row.since, row.until = now, None
    elif kind == EventKind.NMI_OUTCOME_UNKNOWN:
        row.state, row.detail = "NMI unknown", "may have been applied; not resending; watching"
        row.since, row.until = now, None
    elif kind == EventKind.DUMP_DIR_APPEARED:
        row.state, row.detail = "writing", "dump directory appeared"
    elif kind == EventKind.DUMP_PROGRESS:
        row.bytes = _int(data.get("bytes"))
        row.rate = _float(data.get("rate"))
        row.total = _int(data.get("total")) or None
        rate = f" at {human_bytes(row.rate)}/s" if row.rate else ""
        row.state, row.detail = "writing", f"{human_bytes(row.bytes or 0)}{rate}"
    elif kind == EventKind.DUMP_STALLED:
        idle = _float(data.get("idle"))
        detail = f"no growth for {idle:.0f} s at {human_bytes(_int(data.get('bytes')))}"
        if data.get("state") == "stalled":  # the watch's final word (no --stall-grace left)
            row.settle("stalled", detail, now)
        else:
            row.state, row.detail = "stalled", detail
    elif kind == EventKind.KDUMP_STARTED:
        if row.state not in FINAL:
            row.detail = _join(row.detail, "crash kernel up (fence_kdump)")
    elif kind == EventKind.DUMP_COMPLETE:
        size = _int(data.get("size"))
        verdict = (data.get("analysis") or {}).get("verdict") or {}
        headline = verdict.get("headline") if verdict.get("kind") else None
        shown = [part for part in (human_bytes(size) if size else "", str(headline or "")) if part]
        row.settle("complete", "; ".join(shown), now)
        if row.total is not None:
            row.bytes = row.total
    elif kind == EventKind.DUMP_FAILED:
        row.settle("failed", event.message, now)
    elif kind == EventKind.TIMEOUT:
        row.settle("timeout", "no complete dump by the deadline", now)
    elif kind in (EventKind.DUMP_INTERRUPTED, EventKind.INTERRUPTED):
        if row.state not in FINAL:
            row.settle("interrupted", "stopped watching", now)
    elif kind == EventKind.HOST_BACK:
        row.detail = _join(row.detail, "host back")
    elif kind == EventKind.HOST_NOT_BACK:
        row.detail = _join(row.detail, "host not back")
    elif kind == EventKind.POWERED_OFF_AFTER_DUMP:
        row.detail = _join(row.detail, "powered off after its dump")
    elif kind == EventKind.RECOVERED:
        row.detail = _join(row.detail, "powered on" if data.get("action") == "on" else "power-cycled")
    elif kind == EventKind.FAILED:
        status = str(data.get("status") or "")
        if status:
            # the runbook's last word on a host without a complete dump
            word = "NMI unknown" if status in ("unknown", "nmi_outcome_unknown") else status
            row.settle(word if word in _STYLE else "failed", event.message, now)
        else:  # a recovery that failed
            row.detail = _join(row.detail, event.message)


class LiveView:
    """One row per host on a terminal console, redrawn in place while it runs."""

    def __init__(
        self,
        console: Console,
        hosts: Sequence[str],
        first_state: str = "planning",
        first_detail: str = "",
        clock_from_start: bool = False,
    ) -> None:
        self.console = console
        self.lock = threading.RLock()
        self.clock: Callable[[], float] = time.monotonic
        start = self.clock()
        self.rows = {
            host: HostRow(host, first_state, first_detail, since=start if clock_from_start else None)
            for host in hosts
        }
        self.live: Live | None = None

    # the rows

    def event(self, event: Event) -> bool:
        """Applies ``event``; False when a row does not say all of it (print it as a line)."""
        if event.kind not in ROW_KINDS:
            return False
        now = self.clock()
        with self.lock:
            if event.kind == EventKind.INTERRUPTED and event.host is None:
                for each in self.rows.values():
                    apply(each, event, now)
            else:
                row = self.rows.get(event.host or "")
                if row is None:
                    return event.kind == EventKind.SUMMARY
                apply(row, event, now)
        self.refresh()
        return event.kind in ROW_ONLY

    def render(self) -> RenderableType:
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        from oob.dump.events import human_bytes
        from oob.render.text import safe

        now = self.clock()
        table = Table(box=None, pad_edge=False, show_header=False, expand=False)
        table.add_column("host", no_wrap=True, overflow="ellipsis", max_width=32)
        table.add_column("state", no_wrap=True)
        table.add_column("elapsed", no_wrap=True, justify="right")
        table.add_column("detail", no_wrap=True, overflow="ellipsis")
        with self.lock:
            rows = list(self.rows.values())
        for row in rows:
            elapsed = row.elapsed(now)
            detail: Any = safe(row.detail)
            if row.total and row.state == "writing":
                # a bar only for a known total: makedumpfile's output size is not one
                grid = Table.grid(padding=(0, 1))
                grid.add_row(
                    ProgressBar(total=row.total, completed=row.bytes or 0, width=20),
                    safe(f"{human_bytes(row.bytes or 0)} of {human_bytes(row.total)}"),
                    detail,
                )
                detail = grid
            table.add_row(
                safe(row.host),
                safe(f"{row.state:<11}", _STYLE.get(row.state, "")),
                safe(_clock(elapsed) if elapsed is not None else ""),
                detail,
            )
        return table

    # the display

    def start(self) -> None:
        from rich.live import Live

        with self.lock:
            if self.live is not None:
                return
            self.live = Live(
                get_renderable=self.render,
                console=self.console,
                refresh_per_second=4,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self.live.start()

    def stop(self) -> None:
        with self.lock:
            live, self.live = self.live, None
        if live is not None:
            live.stop()

    def refresh(self) -> None:
        live = self.live
        if live is not None:
            live.refresh()

    @property
    def running(self) -> bool:
        return self.live is not None


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(0, int(seconds)), 60)
    return f"{minutes}:{rest:02d}"


def _join(first: str, second: str) -> str:
    return f"{first}; {second}" if first else second


def _int(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        return 0


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
