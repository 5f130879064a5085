"""Per-host locks, so two oob runs on this machine never act on one host at once.

``flock`` locks vanish with the process that held them, so a crashed run never leaves a
host locked. The lock file names its holder (user@machine, pid, since when) so that a
refused run can say who holds it; a holder record left by a dead process is taken over
with a warning.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from oob import whoami
from oob.errors import SafetyRefusal


def _lock_name(host: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", host) + ".lock"


def _describe(record: dict[str, object]) -> str:
    return f"{record.get('user', '?')}@{record.get('machine', '?')} (pid {record.get('pid', '?')}) " \
           f"since {record.get('since', '?')}"


def _read_holder(fd: int) -> dict[str, object] | None:
    raw = os.pread(fd, 4096, 0).decode(errors="replace").strip()
    if not raw:
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return {"pid": raw}
    return record if isinstance(record, dict) else None


def _alive(pid: object) -> bool:
    try:
        os.kill(int(str(pid)), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def host_lock(
    directory: Path, host: str, *, on_stale: Callable[[str, str], None] | None = None
) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / _lock_name(host)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            who = _describe(holder) if holder else "another process"
            raise SafetyRefusal(f"locked by another oob run: {who}; not acting", host=host) from None
        stale = _read_holder(fd)
        if stale and on_stale and not _alive(stale.get("pid")):
            on_stale(host, _describe(stale))
        record = {
            "pid": os.getpid(),
            "user": whoami.user(),
            "machine": whoami.machine(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)

