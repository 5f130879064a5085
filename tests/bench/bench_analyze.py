"""Benchmark (prints figures, asserts nothing): analysing a 10,000-line kernel log.

    python tests/bench/bench_analyze.py [--lines 10000] [--runs 5]

The log is built from the real soft-lockup log in tests/data/kernel-logs: its boot lines and
reports repeated until it has ``--lines`` lines, ending with its NMI panic, so every kind of
line the reader handles is in it.  Printed, side by side: oob's whole analysis (read, every
report with its dump, verdict) and ``grep -E`` over the same file for the report headers
alone, the floor any reader of the file pays; then the same for a 16 MiB log (the most
oob reads).  Goal: a 10,000-line log well under a second.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from oob.analysis import analyze_bytes

LOGS = Path(__file__).resolve().parents[1] / "data" / "kernel-logs"
GOAL_SECONDS = 1.0
HEADERS = r"soft lockup|hard LOCKUP|self-detected stall|detected stalls|blocked for more than|Oops:|kernel BUG at|Kernel panic"


def build(lines: int) -> bytes:
    real = (LOGS / "softlockup" / "vmcore-dmesg.txt").read_bytes().splitlines(keepends=True)
    body, tail = real[:490], real[490:]
    out: list[bytes] = []
    while len(out) + len(body) + len(tail) <= lines:
        out.extend(body)
    out.extend(real[: lines - len(out) - len(tail)])
    out.extend(tail)
    return b"".join(out)


def timed(function, runs: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare(label: str, data: bytes, runs: int) -> None:
    with tempfile.NamedTemporaryFile(suffix=".txt") as handle:
        handle.write(data)
        handle.flush()
        ours = timed(lambda: analyze_bytes(Path(handle.name).read_bytes()), runs)
        tracemalloc.start()
        analysis = analyze_bytes(Path(handle.name).read_bytes())
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        grep = shutil.which("grep")
        theirs = (
            timed(lambda: subprocess.run([grep, "-c", "-E", HEADERS, handle.name], capture_output=True), runs)
            if grep
            else float("nan")
        )
    lines = data.count(b"\n")
    print(f"{label}: {lines} lines, {len(data) // 1024} KiB")
    print(f"  oob analysis      {ours * 1000:8.1f} ms  (peak {peak / 2**20:.1f} MiB Python memory)")
    print(f"  grep -E headers   {theirs * 1000:8.1f} ms  (headers only: no dumps, no verdict)")
    print(f"  verdict: {analysis.verdict.headline} ({len(analysis.findings)} reports)")
    if label.startswith("10"):
        print(f"  goal < {GOAL_SECONDS:.0f} s: {'met' if ours < GOAL_SECONDS else 'MISSED'}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    compare(f"{args.lines:,} lines".replace(",", " "), build(args.lines), args.runs)
    big = build(args.lines)
    compare("16 MiB", (big * (16 * 2**20 // len(big) + 1))[-16 * 2**20 :], max(1, args.runs // 2))
    # lines shaped to make a pattern backtrack (each is read only to MAX_LINE_CHARS)
    crafted = b"\n".join(
        [b"T1" * 50_000, b"RIP: 0010:" + b"a" * 100_000, b"Modules linked in: " + b"a" * 100_000]
    )
    compare("crafted lines", (crafted + b"\n") * 100 + big, max(1, args.runs // 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
