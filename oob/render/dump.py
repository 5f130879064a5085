"""Rendering of dump-watch events: a live progress bar per host on a terminal, plain
lines otherwise, JSON lines for automation. Shared by ``oob watch`` and ``oob crash``.

Directory names, paths, panic lines and kdump's own messages are written by the crashed
host: the console shows them through :mod:`oob.render.text` (escaped, never markup); JSON
lines carry them exactly, with control characters as ``\\u`` escapes."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Self

from oob.events import Event
from oob.render.base import Renderer

if TYPE_CHECKING:
    from rich.console import Console

#: the dump events --json writes to stdout; others (warnings) go to stderr as text
DUMP_EVENTS = frozenset(
    {
        "dump_dir_appeared",
        "kdump_started",
        "dump_progress",
        "dump_complete",
        "dump_stalled",
        "dump_failed",
        "timeout",
        "dump_interrupted",
        "dump_dirs_skipped",
    }
)


class DumpRenderer(Renderer[Sequence[Any]]):
    """Dump-watch events; the report is each host's DumpResult."""

    def report(self, report: Sequence[Any]) -> None:
        """The final word on each host (the events said it all already, by default)."""


class JsonLines(DumpRenderer):
    """Chosen events as JSON lines on stdout; anything else as text on stderr."""

    def __init__(self, kinds: Iterable[str] = DUMP_EVENTS) -> None:
        self.kinds = frozenset(kinds)

    def event(self, event: Event) -> None:
        if event.kind in self.kinds:
            from oob.render.jsonl import write_json

            write_json(event.to_dict())
        else:
            from oob.render.jsonl import write_event_line

            write_event_line(event)


class LiveConsole(DumpRenderer):
    """The live view on a terminal (one row per host, :mod:`oob.render.live`); plain event
    lines otherwise; the report as a table that fits and a block per host."""

    #: without a terminal, a progress line per host at most this often
    PLAIN_PROGRESS_EVERY = 30.0

    def __init__(
        self,
        hosts: Sequence[str],
        out: Console | None = None,
        err: Console | None = None,
        watch_only: bool = True,
    ) -> None:
        from oob.render.console import make_console
        from oob.render.live import LiveView

        self.err = err if err is not None else make_console(stderr=True)
        self.out = out if out is not None else make_console(stderr=False)
        self.hosts = list(hosts)
        self.live = self.err.is_terminal
        # oob watch waits for kdump from its start (its clock too); oob crash plans first
        # and each host's clock runs from its NMI
        self.view = (
            LiveView(self.err, self.hosts, "waiting", "for kdump", clock_from_start=True)
            if watch_only
            else LiveView(self.err, self.hosts, "planning")
        )
        self.last_plain: dict[str, float] = {}
        self._entered = False

    def __enter__(self) -> Self:
        self._entered = True
        if self.live:
            self.view.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._entered = False
        self.view.stop()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No drawing while the engineer answers a question."""
        running = self.view.running
        self.view.stop()
        try:
            yield
        finally:
            if running and self._entered:
                self.view.start()

    def message(self, text: str) -> None:
        from oob.render.text import safe_lines

        self.err.print(safe_lines(text.split("\n")))

    def event(self, event: Event) -> None:
        from oob.render.text import safe

        data = event.data
        if self.live:
            # a row shows it; a line above the view says anything else
            if self.view.event(event):
                return
        elif event.kind == "summary":
            return
        elif event.kind == "dump_progress" and event.host:
            now = time.monotonic()
            if now - self.last_plain.get(event.host, float("-inf")) < self.PLAIN_PROGRESS_EVERY:
                return
            self.last_plain[event.host] = now
        style = {"warning": "yellow", "error": "bold red", "progress": "cyan"}.get(event.level, "green")
        prefix = f"{event.host}: " if event.host else ""
        self.err.print(safe(prefix + event.message, style))
        if event.kind == "dump_complete":
            for line in data.get("panic") or ():
                self.err.print(safe(f"  {line}"))
            verdict = (data.get("analysis") or {}).get("verdict") or {}
            if verdict.get("kind"):
                self.err.print(
                    safe(f"  why it hung: {verdict.get('headline')} ({verdict.get('confidence')} confidence)")
                )

    def report(self, report: Sequence[Any]) -> None:
        from oob.dump.events import human_bytes
        from oob.render.analysis import analysis_pairs, cause
        from oob.render.crash import dump_location
        from oob.render.report import Column, fitted_table, print_blocks
        from oob.render.text import cell, safe

        columns = (
            Column("HOST"),
            Column("STATE"),
            Column("SIZE", drop=2, justify="right"),
            Column("FORMAT", drop=3),
            Column("MINUTES", drop=1, justify="right"),
            Column("WHERE / WHY", drop=9),
        )
        styles = {"complete": "green", "failed": "red", "timeout": "red"}
        rows = []
        blocks = []
        for result in report:
            state = result.state.value
            style = styles.get(state, "yellow")
            where = dump_location(result)
            panic = result.panic.panic_line if result.ok else None
            why_hung = cause(result.analysis) if result.ok else None
            rows.append(
                (
                    cell(result.host),
                    cell(state, style),
                    cell(human_bytes(result.size) if result.size else None),
                    cell(result.format.kind if result.format else None),
                    cell(f"{result.seconds / 60:.1f}" if result.seconds is not None and result.ok else None),
                    cell(
                        "; ".join(p for p in (why_hung or panic, where) if p)
                        if result.ok
                        else result.message,
                        empty="",
                    ),
                )
            )
            pairs: list[tuple[str, object]] = [
                ("dump", where),
                ("size", human_bytes(result.size) if result.size else None),
                ("format", result.format.label if result.format else None),
                *(analysis_pairs(result.analysis) if result.ok else ()),
                ("panic", panic),
                ("why", None if result.ok else result.message),
                *(("kdump", line) for line in result.details),
            ]
            blocks.append((safe(f"{result.host}: {state}", style), pairs))
        self.out.print(fitted_table(self.out, columns, rows))
        print_blocks(self.out, blocks)
