"""Per-host locks, so two oob runs on this machine never act on one host at once.

``flock`` locks vanish with the process that held them: a crashed run never leaves a
host locked.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from oob.errors import SafetyRefusal


def _lock_name(host: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", host) + ".lock"


@contextmanager
def host_lock(directory: Path, host: str) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / _lock_name(host)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise SafetyRefusal(f"another oob run (pid {holder}) is acting on this host; not sending", host=host) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
