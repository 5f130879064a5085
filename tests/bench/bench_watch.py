"""Benchmark (prints figures, asserts nothing): 100 hosts dumping to one SSH dump server.

    python tests/bench/bench_watch.py [--hosts 100] [--size-mib 2] [--interval SECONDS]

A real OpenSSH sshd on 127.0.0.1 serves one directory; each simulated host writes its dump
there (mocks/kdump.py, in its own thread, on the real clock), with its IP or host name in
the directory name, starting at staggered moments.  The watcher runs with its default
settings unless told otherwise.  Printed:

- the time from each dump's final rename (or README rewrite) to its ``dump_complete``
  event: median, p95 and max (goal: <= 1 s at default settings);
- the SSH connections the watcher opened, and the logins sshd recorded (goal: 1).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mocks.kdump import DumpSpec, KdumpWriter
from mocks.sshd import SshServer
from oob.dump.watcher import DumpWatcher, WatchOptions
from oob.events import Event
from oob.model import DumpConfig, Host
from oob.ssh import SshOptions

GOAL_SECONDS = 1.0
#: a mix of the layouts that go over ssh, each with the identity its kdump puts in names
LAYOUTS = ("rhel-ssh", "suse-ssh", "debian-ssh", "suse-old-ssh")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


async def run(args: argparse.Namespace, workdir: Path) -> int:
    sshd = SshServer.start(workdir / "sshd")
    try:
        root = workdir / "var-crash"
        root.mkdir()
        rng = random.Random(7)
        hosts, writers = [], []
        for index in range(args.hosts):
            name = f"node{index:03d}"
            address = f"10.{index // 250}.{index % 250}.{10 + index % 200}"
            layout = LAYOUTS[index % len(LAYOUTS)]
            identity = f"{name}.example.com" if layout == "suse-ssh" else address
            hosts.append(Host(name=name, address=address, dump=DumpConfig(target=sshd.url(root))))
            spec = DumpSpec(
                layout=layout,
                identity=identity,
                hostname=name,
                size=int(args.size_mib * 1024 * 1024),
                chunk=256 * 1024,
                rate=args.rate_mib * 1024 * 1024,
                boot_delay=rng.uniform(0.2, args.spread),
                dmesg_delay=0.1,
                seed=index,
            )
            writers.append(KdumpWriter(root, spec))
        options = WatchOptions() if args.interval is None else WatchOptions(interval=args.interval)
        completed_events: dict[str, float] = {}

        def emit(event: Event) -> None:
            if event.kind == "dump_complete" and event.host:
                completed_events[event.host] = time.monotonic()

        ssh = SshOptions(known_hosts=str(sshd.known_hosts), identity_files=(str(sshd.client_key),))
        logins_before = sshd.accepted_logins()
        started = time.monotonic()
        async with DumpWatcher(hosts, options, ssh=ssh, emit=emit) as watcher:
            baseline = await watcher.take_baseline()
            for writer in writers:
                writer.start()
            results = await watcher.watch(baseline)
            connections = watcher.connections_opened
        elapsed = time.monotonic() - started
        for writer in writers:
            writer.stop()
        logins = sshd.accepted_logins() - logins_before
    finally:
        sshd.stop()

    latencies = []
    for host, writer in zip(hosts, writers, strict=True):
        if writer.completed_at is not None and host.name in completed_events:
            latencies.append(completed_events[host.name] - writer.completed_at)
    complete = sum(1 for result in results if result.ok)
    print(
        f"hosts: {args.hosts} dumping {args.size_mib:g} MiB each at {args.rate_mib:g} MiB/s to one sshd on "
        f"127.0.0.1 (layouts {', '.join(LAYOUTS)})"
    )
    print(
        f"watch settings: interval {options.interval:g} s (default {WatchOptions().interval:g} s); "
        f"whole run {elapsed:.1f} s; complete {complete}/{args.hosts}"
    )
    if latencies:
        print(
            f"final rename -> dump_complete: median {statistics.median(latencies) * 1000:.0f} ms, "
            f"p95 {percentile(latencies, 0.95) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms "
            f"(goal <= {GOAL_SECONDS * 1000:.0f} ms)"
        )
    print(f"SSH connections opened by the watcher: {connections}; logins recorded by sshd: {logins} (goal 1)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--size-mib", type=float, default=2.0, help="memory image per host")
    parser.add_argument("--rate-mib", type=float, default=8.0, help="write rate per host, MiB/s")
    parser.add_argument(
        "--spread", type=float, default=4.0, help="hosts start dumping over this many seconds"
    )
    parser.add_argument(
        "--interval", type=float, default=None, help="watch interval (default: the watcher's)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="oob-bench-watch-") as workdir:
        return asyncio.run(run(args, Path(workdir)))


if __name__ == "__main__":
    sys.exit(main())
