"""Benchmark (prints figures, asserts nothing): how promptly ``oob watch`` ends when what it
reads hangs.

    python tests/bench/bench_hangs.py [--runs 5] [--timeout 3]

Two hangs, each through the real ``oob watch`` process:

- ``sftp``: a real sshd on 127.0.0.1 whose sftp-server stops answering after the baseline's
  listing (mocks/sshd.py's stalling proxy; SSH itself stays up);
- ``fifo``: a file:// dump directory whose ``vmcore-dmesg.txt`` is a FIFO nobody writes to
  and whose ``vmcore-incomplete`` is a FIFO fed forever.

Printed, per hang: how long past its ``--timeout`` the process took to exit (goal: well
under 1 s), and how long from SIGINT (Ctrl-C) to its exit (goal: <= 2 s), median and max.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from mocks.host import ManualClock  # noqa: E402 - after the sys.path line above
from mocks.kdump import DumpSpec, KdumpWriter  # noqa: E402 - after the sys.path line above
from mocks.sshd import SshServer  # noqa: E402 - after the sys.path line above

ADDRESS = "192.0.2.11"


def inventory(path: Path) -> Path:
    path.write_text(
        textwrap.dedent(f"""
        [defaults]
        bmc.password = "env:OOB_BENCH_UNUSED"
        [hosts.web01]
        address = "{ADDRESS}"
        bmc.address = "192.0.2.200"
    """)
    )
    path.chmod(0o600)
    return path


def fifo_dump(root: Path, stop: threading.Event) -> None:
    writer = KdumpWriter(
        root,
        DumpSpec(layout="rhel-nfs", identity=ADDRESS, size=64 * 1024, chunk=16 * 1024),
        clock=ManualClock(),
    )
    list(writer.steps())
    directory = writer.directory
    assert directory is not None
    for name in ("kexec-dmesg.log", "vmcore", "vmcore-dmesg.txt"):
        (directory / name).unlink()
    os.mkfifo(directory / "vmcore-dmesg.txt")
    os.mkfifo(directory / "vmcore-incomplete")

    def feed() -> None:
        try:
            with open(directory / "vmcore-incomplete", "wb", buffering=0) as pipe:
                while not stop.is_set():
                    pipe.write(b"\0" * 65536)
        except OSError:
            pass

    threading.Thread(target=feed, daemon=True).start()


def timed_run(argv: list[str], interrupt_when: Callable[[], bool] | None) -> float:
    """Seconds from the deadline (or the SIGINT) to the process's exit."""
    env = dict(os.environ)
    env.pop("OOB_INVENTORY", None)
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "oob", "watch", *argv],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if interrupt_when is None:
        process.wait(timeout=120)
        return time.monotonic() - started
    while not interrupt_when():
        time.sleep(0.02)
    time.sleep(1.0)  # well into the watch (the dump directory found, the calls under way)
    process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    process.wait(timeout=120)
    return time.monotonic() - sent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=3.0, help="oob watch --timeout, in seconds")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="oob-bench-hangs-") as tmp:
        work = Path(tmp)
        inv = inventory(work / "inv.toml")
        common = ["web01", "-i", str(inv), "--since", "5m", "--json", "--interval", "0.1"]
        figures: dict[str, dict[str, list[float]]] = {
            "sftp": {"past": [], "int": []},
            "fifo": {"past": [], "int": []},
        }
        server = SshServer.start(work / "sshd", sftp_stall_after_readdirs=2)
        stop = threading.Event()
        try:
            for run in range(args.runs):
                root = work / f"sftp-{run}"
                root.mkdir()
                ssh = [
                    "--target",
                    server.url(root),
                    "--known-hosts",
                    str(server.known_hosts),
                    "--ssh-key",
                    str(server.client_key),
                ]
                past = timed_run([*common, *ssh, "--timeout", f"{args.timeout}s"], None) - args.timeout
                figures["sftp"]["past"].append(past)
                server.sftp_stalled_marker.unlink(missing_ok=True)
                figures["sftp"]["int"].append(
                    timed_run([*common, *ssh, "--timeout", "10m"], server.sftp_stalled)
                )

                root = work / f"fifo-{run}"
                root.mkdir()
                fifo_dump(root, stop)
                local = ["--target", f"file://{root}"]
                past = timed_run([*common, *local, "--timeout", f"{args.timeout}s"], None) - args.timeout
                figures["fifo"]["past"].append(past)
                figures["fifo"]["int"].append(timed_run([*common, *local, "--timeout", "10m"], lambda: True))
        finally:
            stop.set()
            server.stop()
    print(f"oob watch --timeout {args.timeout:g}s, {args.runs} runs each (process start-up included)")
    for hang, values in figures.items():
        past, interrupted = values["past"], values["int"]
        print(
            f"{hang}: exit after the deadline: median {statistics.median(past):.2f} s, max {max(past):.2f} s "
            "(interpreter start-up and the first listing included); "
            f"SIGINT -> exit: median {statistics.median(interrupted):.2f} s, max {max(interrupted):.2f} s (goal <= 2 s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
