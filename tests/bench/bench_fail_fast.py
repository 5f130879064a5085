"""How long `oob nmi` takes to give up on a BMC that cannot be reached (figures, not tests).

    python tests/bench/bench_fail_fast.py [--timeout 5]

Four cases, each a real `python -m oob nmi HOST --yes --json` against loopback: a closed
port (connection refused), a silent listener (accepts, never answers the TLS handshake), a
plain HTTP server behind an https:// address, and a name that does not resolve.  Prints
the wall time, exit code and lines of output of each, with the goals of the issue beside them (exit 3
within 6 s for refused and unresolvable, within the connect timeout for a silent one).
"""

from __future__ import annotations

import argparse
import http.server
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(address: str, timeout: float, workdir: Path) -> tuple[float, int, int]:
    inventory = workdir / "inv.toml"
    inventory.write_text(
        "[hosts.bmc]\n"
        f'bmc.address = "{address}"\n'
        'bmc.username = "admin"\n'
        'bmc.password = "env:OOB_BENCH_PW"\n'
        f"bmc.timeout = {timeout}\n"
    )
    env = dict(os.environ, OOB_BENCH_PW="x", OOB_AUDIT_LOG=str(workdir / "audit.jsonl"))
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "oob", "nmi", "bmc", "-i", str(inventory), "--yes"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=600,
    )
    # what the engineer reads: the error lines (stderr) and the result table (stdout)
    lines = [line for line in (run.stderr + run.stdout).splitlines() if line.strip()]
    return time.perf_counter() - start, run.returncode, len(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timeout", type=float, default=5.0, help="bmc.timeout of the inventory (s)")
    args = parser.parse_args()

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # the kernel completes handshakes; nobody ever reads or writes

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    cases = [
        ("closed port (refused)", f"https://127.0.0.1:{_free_port()}", "exit 3 within 6 s"),
        ("silent listener", f"https://127.0.0.1:{silent.getsockname()[1]}", "within the connect timeout"),
        ("HTTP behind https://", f"https://127.0.0.1:{plain.server_address[1]}", "exit 3 within 6 s"),
        ("unresolvable name", "https://bmc.invalid", "exit 3 within 6 s"),
    ]
    print(f"{'case':<24} {'seconds':>8} {'exit':>5} {'output lines':>13}  goal")
    try:
        with tempfile.TemporaryDirectory() as work:
            for name, address, goal in cases:
                seconds, code, lines = _run(address, args.timeout, Path(work))
                print(f"{name:<24} {seconds:8.2f} {code:5d} {lines:13d}  {goal}")
    finally:
        plain.shutdown()
        silent.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
