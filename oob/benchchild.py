"""A benchmark contestant run in a child process: its wall time, exit code, peak RSS and CPU.

Shared by ``python -m oob.bench fanout`` and ``transport``.  The figures come from GNU time
(``/usr/bin/time -f "%M %U %S"``), which forks the command from its own small process: a
child forked from the benchmark's process (which holds the whole mock fleet) would report
that process's RSS as its own peak, Linux counting the parent's pages up to exec.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Child:
    seconds: float
    exit_code: int
    rss_mib: float
    cpu_seconds: float
    stdout: str
    stderr: str


def run_child(argv: Sequence[str], env: dict[str, str], stdin: str | None, timeout: float) -> Child:
    """Run ``argv`` under GNU time: wall time, exit code, peak RSS and CPU (wait4's, of it
    and the children it waited for).  Without GNU time the RSS and CPU are unknown (NaN)."""
    with tempfile.TemporaryDirectory(prefix="oob-bench-child-") as scratch:
        usage_file = Path(scratch) / "usage"
        timer = Path("/usr/bin/time")
        command = (
            [str(timer), "-f", "%M %U %S", "-o", str(usage_file), *argv] if timer.is_file() else list(argv)
        )
        start = time.perf_counter()
        # a process group of its own: at the deadline GNU time, the contestant and its
        # worker processes all go, not GNU time alone
        child = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = child.communicate(stdin or "", timeout=timeout)
            code = child.returncode
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
            code, out, err = -9, "", f"killed: still running after {timeout:.0f} s"
        seconds = time.perf_counter() - start
        try:
            kib, user, system = usage_file.read_text().strip().splitlines()[-1].split()
            rss_mib, cpu = int(kib) / 1024, float(user) + float(system)
        except (OSError, ValueError, IndexError):
            rss_mib = cpu = float("nan")
        return Child(seconds, code, rss_mib, cpu, out, err)
