"""Fixtures for the dump watcher tests: a real sshd on loopback, hosts, and a watch runner
that drives mock kdump writers (mocks/kdump.py) against real files."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mocks.kdump import DumpSpec, KdumpWriter
from mocks.sshd import SshServer
from oob.dump.watcher import DumpResult, DumpWatcher, WatchOptions
from oob.events import Event
from oob.model import DumpConfig, Host
from oob.ssh import SshOptions

#: what the endless FIFO writers write: must never appear in what oob reports
FIFO_SECRET = b"FIFO-SECRET-5f4dcc3b5aa765d6"

#: fast settings for tests: small dumps, short pauses
FAST = WatchOptions(interval=0.02, stall_after=1.5, timeout=8.0, progress_every=0.05)


def fast_spec(layout: str, **kwargs: Any) -> DumpSpec:
    values: dict[str, Any] = {
        "size": 96 * 1024,
        "chunk": 16 * 1024,
        "rate": 2e6,
        "boot_delay": 0.03,
        "dmesg_delay": 0.01,
    }
    values.update(kwargs)
    return DumpSpec(layout=layout, **values)


def make_host(
    name: str, target: str, address: str | None = None, layout: str = "auto", aliases: Sequence[str] = ()
) -> Host:
    return Host(
        name=name, address=address, aliases=tuple(aliases), dump=DumpConfig(target=target, layout=layout)
    )


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    server = SshServer.start(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ssh_options(sshd: SshServer) -> SshOptions:
    return SshOptions(known_hosts=str(sshd.known_hosts), identity_files=(str(sshd.client_key),))


@dataclass
class WatchRun:
    results: list[DumpResult]
    events: list[Event]
    connections: int
    writers: list[KdumpWriter] = field(default_factory=list)

    def result(self, host: str) -> DumpResult:
        return next(r for r in self.results if r.host == host)

    def kinds(self, host: str | None = None) -> list[str]:
        return [e.kind for e in self.events if host is None or e.host == host]


@pytest.fixture
def run_watch() -> Callable[..., WatchRun]:
    """run_watch(hosts, writers, options=FAST, ssh=None, before=None) -> WatchRun.

    Takes the baseline (after ``before()`` if given: old dumps), starts the writers in
    background threads on the real clock, and watches until every host is final.
    """

    def run(
        hosts: Sequence[Host],
        writers: Sequence[KdumpWriter] = (),
        options: WatchOptions = FAST,
        ssh: SshOptions | None = None,
        since: float | None = None,
        after_baseline: Callable[[], None] | None = None,
    ) -> WatchRun:
        events: list[Event] = []

        async def main() -> WatchRun:
            async with DumpWatcher(hosts, options, ssh=ssh, emit=events.append) as watcher:
                baseline = await watcher.take_baseline(since)
                if after_baseline is not None:
                    after_baseline()
                for writer in writers:
                    writer.start()
                try:
                    results = await watcher.watch(baseline)
                finally:
                    for writer in writers:
                        writer.stop()
                return WatchRun(results, events, watcher.connections_opened, list(writers))

        return asyncio.run(main())

    return run


@pytest.fixture
def endless_fifo_writers() -> Iterator[Callable[[Path], None]]:
    """fifo(path): a FIFO at ``path`` with a writer that would never stop writing."""
    stop = threading.Event()
    fifos: list[Path] = []

    def writer(path: Path) -> None:
        try:
            with open(path, "wb", buffering=0) as pipe:  # blocks until someone reads
                while not stop.is_set():
                    pipe.write(b"Kernel panic - not syncing: " + FIFO_SECRET + b"\n" * 4096)
        except OSError:
            pass

    def make(path: Path) -> None:
        os.mkfifo(path)
        fifos.append(path)
        threading.Thread(target=writer, args=(path,), daemon=True).start()

    yield make
    stop.set()
    for path in fifos:  # release writers still waiting for a reader
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            continue
        time.sleep(0.01)
        os.close(fd)
