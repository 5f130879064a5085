"""Benchmarks that print figures (never assertions in the test suite).

python -m oob.bench help [--runs N]     wall time of `oob --help` (target <= 150 ms)
python -m oob.bench fanout [--n 100] [--latency-ms 200] [--parallel 256] [--skip ipmi,...] [--timeout 900]
                                        oob vs python-redfish-library and ipmipower over N mock BMCs
python -m oob.bench transport [--n 1000] [--latency-ms 200] [--concurrency 64,256,1000] [--timeout 900]
                                        threads or asyncio for the Redfish fan-out, by measurement
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

HELP_TARGET_MS = 150.0


def _time_command(argv: list[str], runs: int) -> list[float]:
    subprocess.run(argv, capture_output=True, check=True)  # warm the page cache
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def bench_help(runs: int) -> int:
    commands = {"python -m oob --help": [sys.executable, "-m", "oob", "--help"]}
    script = shutil.which("oob")
    if script:
        commands["oob --help"] = [script, "--help"]
    worst = 0.0
    for label, argv in commands.items():
        samples = _time_command(argv, runs)
        median = statistics.median(samples)
        worst = max(worst, median)
        print(
            f"{label:<24} median {median:6.1f} ms  min {min(samples):6.1f} ms  "
            f"max {max(samples):6.1f} ms  ({runs} runs; target <= {HELP_TARGET_MS:.0f} ms)"
        )
    verdict = "within" if worst <= HELP_TARGET_MS else "OVER"
    print(f"result: {verdict} target ({worst:.1f} ms median)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m oob.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="bench", required=True)
    help_parser = sub.add_parser("help", help="time `oob --help`")
    help_parser.add_argument("--runs", type=int, default=20)
    fanout = sub.add_parser("fanout", help="oob vs the reference tools over N mock BMCs (oob.benchfanout)")
    fanout.add_argument("--n", type=int, default=100, help="BMCs per contestant (default 100)")
    fanout.add_argument("--latency-ms", type=int, default=200, help="per Redfish response (default 200)")
    fanout.add_argument(
        "--parallel", default="256", help="oob's --parallel values, comma-separated (default 256, the CLI's)"
    )
    fanout.add_argument(
        "--skip",
        default="",
        help="comma-separated contests to leave out: redfish, redfish-loop (the slow reference alone), ipmi, preflight",
    )
    fanout.add_argument(
        "--timeout", type=float, default=900.0, help="seconds before a contestant is killed (default 900)"
    )
    transport = sub.add_parser(
        "transport", help="threads vs asyncio for the Redfish fan-out over N mock BMCs (oob.benchtransport)"
    )
    transport.add_argument("--n", type=int, default=1000, help="BMCs per contestant (default 1000)")
    transport.add_argument("--latency-ms", type=int, default=200, help="per Redfish response (default 200)")
    transport.add_argument(
        "--concurrency",
        default="64,256,1000",
        help="conversations at once, comma-separated (default 64,256,1000)",
    )
    transport.add_argument(
        "--timeout", type=float, default=900.0, help="seconds before a contestant is killed (default 900)"
    )
    args = parser.parse_args(argv)
    if args.bench == "help":
        return bench_help(args.runs)
    if args.bench == "fanout":
        try:
            parallel = [int(value) for value in args.parallel.split(",") if value.strip()]
        except ValueError:
            parser.error(f"--parallel {args.parallel!r}: expected numbers such as 8,100")
        skip = {name.strip() for name in args.skip.split(",") if name.strip()}
        unknown = skip - {"redfish", "redfish-loop", "ipmi", "preflight"}
        if unknown:
            parser.error(f"--skip: unknown contest(s) {', '.join(sorted(unknown))}")
        if args.n < 1 or args.latency_ms < 0 or not parallel or min(parallel) < 1:
            parser.error("--n and every --parallel value must be at least 1, --latency-ms at least 0")
        from .benchfanout import run  # the mock fleet is imported only for this benchmark

        return run(args.n, args.latency_ms, parallel, skip, args.timeout)
    if args.bench == "transport":
        try:
            concurrency = [int(value) for value in args.concurrency.split(",") if value.strip()]
        except ValueError:
            parser.error(f"--concurrency {args.concurrency!r}: expected numbers such as 64,256")
        if args.n < 1 or args.latency_ms < 0 or not concurrency or min(concurrency) < 1:
            parser.error("--n and every --concurrency value must be at least 1, --latency-ms at least 0")
        from .benchtransport import run as run_transport  # the mock fleet is imported only for this benchmark

        return run_transport(args.n, args.latency_ms, concurrency, args.timeout)
    return 2


if __name__ == "__main__":
    sys.exit(main())
