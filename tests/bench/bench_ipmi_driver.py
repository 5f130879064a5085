"""Benchmark (prints figures, asserts nothing): oob's IPMI driver alone over N BMCs.

    python tests/bench/bench_ipmi_driver.py [--n 1000] [--parallel 1,64] [--no-ipmipower]

``python -m oob.bench fanout`` times the whole ``oob nmi all`` (start-up, inventory,
locks, audit log, rendering); this times only what the IPMI driver does for each host
of that run - log in, read the power state, send the NMI, log out - in threads of this
process, as the runbook runs them (``--parallel``), against a mock fleet in a process of
its own (``python -m mocks serve``, loopback only), so the mock's CPU is not this
process's.  Then FreeIPMI's ``ipmipower --pulse`` on a fresh fleet, for reference (its
password in a 0600 configuration file, never on argv).  Each row: wall time, the
client's CPU per host, NMIs the mock counted (must be N).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from oob.drivers.factory import resolve_password
from oob.drivers.ipmi import IpmiDriver
from oob.fdlimit import raise_open_files_limit
from oob.inventory import load_inventory
from oob.model import Host

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # the mock beside this checkout (mocks.child), when run as a script


@dataclass(frozen=True)
class Fleet:
    hosts: list[Host]
    control_url: str
    workdir: Path

    def nmis(self) -> int:
        with requests.Session() as http:
            http.trust_env = False
            listing: list[dict[str, Any]] = http.get(f"{self.control_url}/bmcs", timeout=30).json()
        return sum(int(bmc.get("nmi_count", 0)) for bmc in listing)


@contextmanager
def mock_fleet(n: int) -> Iterator[Fleet]:
    from mocks.child import serve_in_child

    with tempfile.TemporaryDirectory(prefix="oob-bench-ipmi-") as scratch:
        work = Path(scratch)
        with serve_in_child(["ipmi"], n, work, stop_timeout=30) as child:
            hosts = list(load_inventory([child.inventory]).hosts.values())
            yield Fleet(hosts, child.control_url, work / "fleet")


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def oob_driver(fleet: Fleet, parallel: int) -> tuple[float, float, int]:
    """Wall seconds, client CPU seconds, hosts whose NMI was answered with success."""
    password = resolve_password(fleet.hosts[0])

    def one(host: Host) -> bool:
        with IpmiDriver(host, password, connect_attempts=1) as driver:
            driver.power_state()
            return driver.send_nmi().status == 0

    cpu, start = _cpu(), time.perf_counter()
    if parallel == 1:
        answered = [one(host) for host in fleet.hosts]
    else:
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            answered = list(pool.map(one, fleet.hosts))
    return time.perf_counter() - start, _cpu() - cpu, sum(answered)


def ipmipower(fleet: Fleet) -> tuple[float, float, int]:
    config = fleet.workdir / "freeipmi.conf"
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as stream:
        stream.write(f"password {resolve_password(fleet.hosts[0])}\n")
    username = fleet.hosts[0].bmc.username or ""
    targets = ",".join(f"{h.bmc.address}:{h.bmc.ipmi_port}" for h in fleet.hosts)
    argv = ["ipmipower", "-D", "LAN_2_0", "-u", username, "--config-file", str(config), "-h", targets, "--pulse"]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds, cpu, sum(1 for line in run.stdout.splitlines() if line.rstrip().endswith(": ok"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="BMCs (default 1000)")
    parser.add_argument("--parallel", default="1,64", help="thread counts to run, comma-separated")
    parser.add_argument("--no-ipmipower", action="store_true", help="skip FreeIPMI's ipmipower")
    args = parser.parse_args()
    parallel = [int(value) for value in args.parallel.split(",") if value.strip()]
    raise_open_files_limit()
    print(f"IPMI driver alone: N = {args.n}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(f"{'contestant':<32} {'wall s':>7} {'CPU ms/host':>12} {'answered':>9} {'NMIs':>6}")
    rows: list[tuple[str, float]] = []
    contestants: list[tuple[str, Any]] = [
        (f"oob IPMI driver, {p} thread{'s' if p > 1 else ''}", lambda fleet, p=p: oob_driver(fleet, p))
        for p in parallel
    ]
    if not args.no_ipmipower and shutil.which("ipmipower"):
        contestants.append(("ipmipower --pulse", ipmipower))
    for label, contest in contestants:
        with mock_fleet(args.n) as fleet:
            seconds, cpu, answered = contest(fleet)
            nmis = fleet.nmis()
        mark = "" if nmis == args.n else f"  <<< NMIs {nmis} != N {args.n} >>>"
        print(f"{label:<32} {seconds:7.2f} {cpu / args.n * 1000:12.2f} {answered:9d} {nmis:6d}{mark}")
        rows.append((label, seconds))
    reference = dict(rows).get("ipmipower --pulse")
    if reference:
        for label, seconds in rows[:-1]:
            print(f"{label}: {seconds / reference:.1f}x ipmipower's wall time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
