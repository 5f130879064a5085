"""Rendering of dump-watch events: a live progress bar per host on a terminal, plain
lines otherwise, JSON lines for automation. Shared by ``oob watch`` and ``oob crash``.

Directory names, paths, panic lines and kdump's own messages are written by the crashed
host: the console shows them through :mod:`oob.render.text` (escaped, never markup); JSON
lines carry them exactly, with control characters as ``\\u`` escapes."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any, Self

from oob.events import Event
from oob.render.base import Renderer
from oob.safetext import printable

#: the dump events --json writes to stdout; others (warnings) go to stderr as text
DUMP_EVENTS = frozenset(
    {
        "dump_dir_appeared",
        "dump_progress",
        "dump_complete",
        "dump_stalled",
        "dump_failed",
        "timeout",
        "dump_interrupted",
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
    """A live progress bar per host on a terminal; plain lines otherwise; a table at the end."""

    #: without a terminal, a progress line per host at most this often
    PLAIN_PROGRESS_EVERY = 30.0

    def __init__(self, hosts: Sequence[str]) -> None:
        from oob.render.console import make_console

        self.err = make_console(stderr=True)
        self.out = make_console(stderr=False)
        self.hosts = list(hosts)
        self.live = self.err.is_terminal
        self.progress: Any = None
        self.tasks: dict[str, Any] = {}
        self.last_plain: dict[str, float] = {}

    def __enter__(self) -> Self:
        if self.live:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TransferSpeedColumn,
            )

            self.progress = Progress(
                # the host name is shown as it is (escaped below), never read as markup
                TextColumn("{task.fields[host]:<16}", markup=False),
                TextColumn("{task.fields[state]}"),
                BarColumn(),
                DownloadColumn(binary_units=True),
                TransferSpeedColumn(),
                TimeElapsedColumn(),
                console=self.err,
                transient=False,
            )
            self.progress.start()
            for host in self.hosts:
                self.tasks[host] = self.progress.add_task(
                    "", total=None, host=printable(host), state=_state("waiting")
                )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def event(self, event: Event) -> None:
        from oob.render.text import safe

        data = event.data
        if self.progress is not None and event.host in self.tasks:
            task = self.tasks[event.host]
            if event.kind == "dump_dir_appeared":
                self.progress.update(task, state=_state("appeared"))
            elif event.kind == "dump_progress":
                self.progress.update(task, state=_state("writing"), completed=data.get("bytes", 0))
            elif event.kind == "dump_stalled":
                self.progress.update(task, state=_state("stalled", "yellow"))
            elif event.kind in ("dump_complete", "dump_failed", "timeout", "dump_interrupted"):
                size = int(data.get("size") or 0)
                state = {
                    "dump_complete": _state("complete", "green"),
                    "dump_failed": _state("failed", "red"),
                    "dump_interrupted": _state("interrupted", "yellow"),
                }.get(event.kind, _state("timeout", "red"))
                # a full bar only for a complete dump; the others keep what they reached
                total = size if event.kind == "dump_complete" and size else None
                self.progress.update(task, state=state, completed=size, total=total)
                self.progress.stop_task(task)
            if event.kind == "dump_progress":
                return  # the bar says it
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

    def report(self, report: Sequence[Any]) -> None:
        results = report
        from rich.table import Table

        from oob.dump.events import human_bytes
        from oob.render.text import cell, safe_lines

        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("HOST", "STATE", "SIZE", "FORMAT", "MINUTES", "WHERE / WHY"):
            table.add_column(column, overflow="fold")
        styles = {"complete": "green", "failed": "red", "timeout": "red"}
        for result in results:
            state = result.state.value
            if result.ok:
                where = result.location + "/" + (result.vmcore or "") if result.location else ""
                panic = result.panic.panic_line
                detail = (where, panic) if panic else (where,)
            else:
                detail = (result.message,)
            table.add_row(
                cell(result.host),
                cell(state, styles.get(state, "yellow")),
                cell(human_bytes(result.size) if result.size else None),
                cell(result.format.label if result.format else None),
                cell(f"{result.seconds / 60:.1f}" if result.seconds is not None and result.ok else None),
                safe_lines(detail),
            )
        self.out.print(table)


def _state(word: str, style: str = "") -> str:
    """A state word for the progress line, padded before the markup so columns line up."""
    padded = f"{word:<9}"
    return f"[{style}]{padded}[/]" if style else padded
