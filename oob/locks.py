"""Per-host locks, so two oob runs on this machine never act on one host at once.

``flock`` locks vanish with the process that held them, so a crashed run never leaves a
host locked. The lock file names its holder (user@machine, pid, since when) so that a
refused run can say who holds it; a holder record left by a dead process is taken over
with a warning.

A lock is taken for the host's name *and* for its BMC's address, so that two inventories
that name one machine differently still exclude each other.  Lock files are opened with
``O_NOFOLLOW`` in a private directory: a symlink planted as a lock file would otherwise
have oob (often root) truncate whatever it points to.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from oob import whoami
from oob.audit import private_directory
from oob.errors import AuditLogError, SafetyRefusal
from oob.fdlimit import above_select_range


def _lock_name(name: str) -> str:
    """A file name for ``name``: itself when it is plain and short (a host name); else its
    plain characters, cut short, and a hash of the whole, so that two machines never share
    a file (``a/b`` and ``a_b``) and a long guest name on a long libvirt URI stays a valid
    file name."""
    plain = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    if plain == name and len(name) <= 100:
        return f"{name}.lock"
    return f"{plain[:100]}-{hashlib.sha256(name.encode()).hexdigest()[:16]}.lock"


def _describe(record: dict[str, object]) -> str:
    return (
        f"{record.get('user', '?')}@{record.get('machine', '?')} (pid {record.get('pid', '?')}) "
        f"since {record.get('since', '?')}"
    )


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


def _open_lock_file(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        symlink = " (it is a symlink; refusing to follow it)" if os.path.islink(path) else ""
        raise AuditLogError(f"cannot open the lock file {path}: {exc.strerror or exc}{symlink}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise AuditLogError(f"the lock file {path} is not a regular file; refusing to use it")
    # held for the whole run, two per host: kept out of the numbers select(2) can watch
    return above_select_range(fd)


@contextmanager
def host_lock(
    directory: Path, host: str, *, on_stale: Callable[[str, str], None] | None = None, bmc: str | None = None
) -> Iterator[None]:
    """Hold the lock of ``host`` (and of ``bmc``, its BMC address, when given) for the block."""
    if bmc is None:
        with _one_lock(directory, host, host, on_stale):
            yield
        return
    with _one_lock(directory, host, host, on_stale), _one_lock(directory, f"bmc {bmc}", host, on_stale):
        yield


@contextmanager
def _one_lock(
    directory: Path, name: str, host: str, on_stale: Callable[[str, str], None] | None
) -> Iterator[None]:
    private_directory(directory, "lock directory")
    path = directory / _lock_name(name)
    fd = _open_lock_file(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            who = _describe(holder) if holder else "another process"
            what = "" if name == host else f" (its BMC {name.removeprefix('bmc ')})"
            raise SafetyRefusal(f"locked{what} by another oob run: {who}; not acting", host=host) from None
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
