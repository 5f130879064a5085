"""A mock fleet served by a process of its own (``python -m mocks serve``).

For callers that must not share a GIL with the mock: a benchmark or a test of many
threads in the caller, where the mock's answers would otherwise compete with the client's
threads for one interpreter, as real BMCs never do.  :func:`serve_in_child` starts the
fleet, waits for its ready record, and stops it (SIGTERM, then SIGKILL) when the block ends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: the importable name of this package ("mocks" in a source checkout, "oob_mock" installed)
_PACKAGE = __name__.rpartition(".")[0]


@dataclass(frozen=True)
class ChildFleet:
    #: the record the fleet printed when ready (``event``, ``control``, ``bmcs`` ...)
    ready: dict[str, Any]
    #: the oob inventory it wrote for its BMCs
    inventory: Path

    @property
    def control_url(self) -> str:
        return str(self.ready["control"])


@contextmanager
def serve_in_child(
    vendors: Sequence[str], count: int, workdir: Path, *, stop_timeout: float = 10.0
) -> Iterator[ChildFleet]:
    """``count`` BMCs of each of ``vendors`` served by a child process, its control API on
    loopback; ``OOB_*`` variables are not passed on (they are the caller's oob's)."""
    inventory = workdir / "inventory.toml"
    proc = subprocess.Popen(
        [
            sys.executable, "-m", _PACKAGE, "serve", "--vendors", ",".join(vendors), "--count", str(count),
            "--control", "127.0.0.1:0", "--write-inventory", str(inventory), "--workdir", str(workdir / "fleet"),
        ],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("OOB_")},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        ready = json.loads(line) if line.strip() else {}
        if ready.get("event") != "ready":
            raise RuntimeError(f"the mock fleet did not start (exit {proc.poll()}): {line.strip()[:200]!r}")
        yield ChildFleet(ready, inventory)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
