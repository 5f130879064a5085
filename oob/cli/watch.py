"""``oob watch``: follow kdump on the hosts' dump targets until each dump is complete.

For use without ``oob crash`` (the NMI was sent by hand, or by ``oob nmi``): say which
dumps count as new with ``--since TIME`` (the NMI time; directories the dump server
changed since then) or ``--baseline now`` (only directories that appear from now on).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Self

import typer

from oob.cli.common import (
    InventoryOpt,
    JsonOpt,
    TargetsArg,
    VerboseOpt,
    handle_errors,
    load_hosts,
    setup_logging,
)
from oob.errors import DumpTimeout, UsageError
from oob.events import Event

#: the events --json writes to stdout; others (warnings) go to stderr as text
JSON_EVENTS = frozenset(
    {"dump_dir_appeared", "dump_progress", "dump_complete", "dump_stalled", "dump_failed", "timeout"}
)

_DURATION = re.compile(r"(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s?)?")


def parse_duration(text: str, option: str) -> float:
    """``90``, ``90s``, ``15m``, ``2h``, ``1h30m`` -> seconds."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not text.strip() or match is None or not any(match.groupdict().values()):
        raise UsageError(f"{option}: '{text}' is not a duration (like 90, 90s, 15m, 2h, 1h30m)")
    hours, minutes, seconds = (float(match[k] or 0) for k in ("h", "m", "s"))
    return hours * 3600 + minutes * 60 + seconds


def parse_since(text: str, now: datetime | None = None) -> float:
    """``--since``: an ISO time (``2024-05-02T03:10``, with or without zone), ``03:10``
    (today, this machine's local time) or a duration ago (``15m``). Seconds since the epoch."""
    now = now or datetime.now().astimezone()
    value = text.strip()
    when: datetime | None = None
    if re.fullmatch(r"\d{1,2}:\d\d(?::\d\d)?", value):
        parts = [int(p) for p in value.split(":")] + [0]
        try:
            when = now.replace(hour=parts[0], minute=parts[1], second=parts[2], microsecond=0)
        except ValueError:
            raise UsageError(f"--since: '{text}' is not a time of day") from None
    elif re.fullmatch(r"\d{4}-\d\d-\d\d([T ].*)?", value):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise UsageError(f"--since: '{text}' is not an ISO date and time (2024-05-02T03:10)") from None
        if when.tzinfo is None:
            when = when.astimezone()  # local time of this machine
    else:
        try:
            return (now - timedelta(seconds=parse_duration(value, "--since"))).timestamp()
        except UsageError:
            raise UsageError(
                f"--since: '{text}' is neither a time (2024-05-02T03:10, 03:10) nor a duration ago (15m)"
            ) from None
    if when > now + timedelta(seconds=60):
        raise UsageError(f"--since: {when.isoformat()} is in the future")
    return when.timestamp()


def watch_command(
    targets: TargetsArg,
    inventory: InventoryOpt = None,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="TIME",
                     help="Count dump directories changed since TIME (the NMI): 2024-05-02T03:10, 03:10, or 15m (ago)."),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option("--baseline", metavar="now", help="'now': count only dump directories that appear from now on."),
    ] = None,
    timeout: Annotated[str, typer.Option("--timeout", metavar="DURATION", help="Give up after this long (90s, 30m, 1h).")] = "30m",
    interval: Annotated[
        float, typer.Option("--interval", min=0.05, metavar="SECONDS", help="Seconds between two looks at each dump target.")
    ] = 0.5,
    stall_after: Annotated[
        str, typer.Option("--stall-after", metavar="DURATION", help="Report a dump stalled after this long without growth.")
    ] = "2m",
    target: Annotated[
        str | None,
        typer.Option("--target", metavar="URL", help="Dump target for every host (ssh://USER@SERVER[:PORT]/PATH or file:///PATH), "
                     "instead of the inventory's dump.target."),
    ] = None,
    layout: Annotated[
        str | None, typer.Option("--layout", metavar="LAYOUT", help="auto, rhel, suse, suse-old or debian, instead of the inventory's.")
    ] = None,
    known_hosts: Annotated[
        Path | None, typer.Option("--known-hosts", metavar="FILE", help="known_hosts file for ssh:// targets. Default: ~/.ssh/known_hosts.")
    ] = None,
    accept_new_host_key: Annotated[
        bool,
        typer.Option("--accept-new-host-key",
                     help="Trust a dump server whose host key is not in known_hosts yet, and record it (a changed key "
                     "is still refused)."),
    ] = False,
    ssh_key: Annotated[
        list[Path] | None, typer.Option("--ssh-key", exists=True, dir_okay=False, metavar="FILE",
                                        help="Private key for ssh:// targets (repeatable). Default: the "
                                        "agent, ~/.ssh/id_* and ~/.ssh/config.")
    ] = None,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Watch the hosts' dump targets until each new kdump dump is complete.

    Reports each dump directory as it appears, its progress, and when it is complete (by
    its distribution's rule), stalled, failed or late, with the panic lines from its
    kernel log. Exit 0 when every dump is complete, 5 otherwise, 2 for bad input.
    """
    setup_logging(verbose)
    with handle_errors(verbose):
        from oob.dump.layouts import families_for
        from oob.dump.targets import SshOptions, parse_target
        from oob.dump.watcher import WatchOptions

        if (since is None) == (baseline is None):
            raise UsageError(
                "say which dumps are new: --since TIME (when the NMI was sent, e.g. --since 15m) or "
                "--baseline now (only dumps that appear from now on)"
                if since is None else "--since and --baseline exclude each other"
            )
        if baseline is not None and baseline != "now":
            raise UsageError(f"--baseline takes only 'now', not '{baseline}' (for a time, use --since)")
        since_epoch = parse_since(since) if since is not None else None
        options = WatchOptions(
            interval=interval,
            stall_after=parse_duration(stall_after, "--stall-after"),
            timeout=parse_duration(timeout, "--timeout"),
        )
        if target is not None:
            parse_target(target)
        if layout is not None:
            families_for(layout)
        ssh = SshOptions(
            known_hosts=str(known_hosts) if known_hosts else None,
            accept_new_host_key=accept_new_host_key,
            identity_files=tuple(str(p) for p in ssh_key or ()),
        )
        hosts = load_hosts(inventory, targets)
        hosts = [
            replace(host, dump=replace(host.dump, target=target or host.dump.target, layout=layout or host.dump.layout))
            for host in hosts
        ]
        renderer: _Renderer = _JsonLines() if json_output else _Console([h.name for h in hosts])
        # imported here: `oob --help` should not pay for asyncio
        import asyncio

        results = asyncio.run(_watch(hosts, options, ssh, since_epoch, renderer))
        raise typer.Exit(0 if all(result.ok for result in results) else DumpTimeout.exit_code)


async def _watch(hosts: Sequence[Any], options: Any, ssh: Any, since: float | None, renderer: _Renderer) -> list[Any]:
    from oob.dump.watcher import DumpWatcher

    async with DumpWatcher(hosts, options, ssh=ssh, emit=renderer.event) as watcher:
        base = await watcher.take_baseline(since)
        with renderer:
            results = await watcher.watch(base)
        renderer.summary(results)
        return results


class _Renderer:
    def event(self, event: Event) -> None:
        raise NotImplementedError

    def summary(self, results: Sequence[Any]) -> None:
        """The final word on each host (the events said it all already, by default)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class _JsonLines(_Renderer):
    """Dump events as JSON lines on stdout; anything else as text on stderr."""

    def event(self, event: Event) -> None:
        if event.kind in JSON_EVENTS:
            from oob.render.jsonl import write_json

            write_json(event.to_dict())
        else:
            prefix = f"{event.host}: " if event.host else ""
            sys.stderr.write(f"{prefix}{event.level}: {event.message}\n")
            sys.stderr.flush()


class _Console(_Renderer):
    """A live progress bar per host on a terminal; plain lines otherwise; a table at the end."""

    #: without a terminal, a progress line per host at most this often
    PLAIN_PROGRESS_EVERY = 30.0

    def __init__(self, hosts: Sequence[str]) -> None:
        from rich.console import Console

        self.err = Console(stderr=True, highlight=False, soft_wrap=True)
        self.out = Console(highlight=False, soft_wrap=True)
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
                TextColumn("{task.fields[host]:<16}"),
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
                self.tasks[host] = self.progress.add_task("", total=None, host=host, state=_state("waiting"))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def event(self, event: Event) -> None:
        from rich.markup import escape

        data = event.data
        if self.progress is not None and event.host in self.tasks:
            task = self.tasks[event.host]
            if event.kind == "dump_dir_appeared":
                self.progress.update(task, state=_state("appeared"))
            elif event.kind == "dump_progress":
                self.progress.update(task, state=_state("writing"), completed=data.get("bytes", 0))
            elif event.kind == "dump_stalled":
                self.progress.update(task, state=_state("stalled", "yellow"))
            elif event.kind in ("dump_complete", "dump_failed", "timeout"):
                size = int(data.get("size") or 0)
                state = {"dump_complete": _state("complete", "green"), "dump_failed": _state("failed", "red")}.get(
                    event.kind, _state("timeout", "red"))
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
        self.err.print(f"[{style}]{escape(prefix + event.message)}[/]")
        if event.kind == "dump_complete":
            for line in data.get("panic") or ():
                self.err.print(f"  {escape(line)}")

    def summary(self, results: Sequence[Any]) -> None:
        from rich.markup import escape
        from rich.table import Table

        from oob.dump.events import human_bytes

        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("HOST", "STATE", "SIZE", "FORMAT", "MINUTES", "WHERE / WHY"):
            table.add_column(column, overflow="fold")
        styles = {"complete": "green", "failed": "red", "timeout": "red"}
        for result in results:
            state = result.state.value
            if result.ok:
                where = result.location + "/" + (result.vmcore or "") if result.location else ""
                panic = result.panic.panic_line
                detail = f"{where}\n{panic}" if panic else where
            else:
                detail = result.message
            table.add_row(
                escape(result.host),
                f"[{styles.get(state, 'yellow')}]{state}[/]",
                human_bytes(result.size) if result.size else "-",
                escape(result.format.label) if result.format else "-",
                f"{result.seconds / 60:.1f}" if result.seconds is not None and result.ok else "-",
                escape(detail),
            )
        self.out.print(table)


def _state(word: str, style: str = "") -> str:
    """A state word for the progress line, padded before the markup so columns line up."""
    padded = f"{word:<9}"
    return f"[{style}]{padded}[/]" if style else padded
