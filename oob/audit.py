"""Append-only audit log of every action that changes a host (JSON lines).

Written *before* an NMI leaves and again after, so that a crash of oob itself still
leaves a trace of what may have been sent. Nothing is ever truncated or rewritten —
except the torn bytes of oob's *own* record when a write came up short (a full disk):
those are cut off again at once, so that every line in the log is a whole record.
Records name the host, BMC and method; never a credential.

The log is also the memory of the repeat guard (:meth:`AuditLog.recent`): a record it
cannot read near the end is a record of an NMI it cannot rule out, so it makes oob
refuse, never skip.  Hence the care: whole records or none, ``fsync`` of the file (and
of its directory when the file is new), ``O_NOFOLLOW`` (a symlink planted where the log
should be is refused, not written through), and an exclusive ``flock`` while appending
so that two oob processes never interleave or cut each other's records.

Records written at once by many threads (a thousand hosts' ``nmi.sending``) share one
write and one ``fsync`` (group commit): a record is durable when :meth:`AuditLog.record`
returns, as before, but a thousand of them no longer wait for a thousand ``fsync`` calls
in a row.  A batch that cannot be written is cut back whole and every record in it fails.
"""

from __future__ import annotations

import bisect
import copy
import fcntl
import json
import math
import os
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from oob import whoami
from oob.errors import AuditLogError

#: how much of the log's end is read to find recent actions
_TAIL_BYTES = 4 * 1024 * 1024


def default_audit_path(environ: Mapping[str, str] = os.environ) -> Path:
    if environ.get("OOB_AUDIT_LOG"):
        return Path(environ["OOB_AUDIT_LOG"])
    state = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "oob" / "audit.jsonl"


@dataclass(frozen=True)
class TornRecord:
    """A line near the end of the log that is not a whole record."""

    #: byte offset of the line in the file
    offset: int
    text: str


def private_directory(path: Path, what: str) -> None:
    """Create ``path`` (0700) or check an existing one: a real directory, not a symlink,
    not writable by other users (they could plant files or symlinks in it)."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(path)
    except OSError as exc:
        raise AuditLogError(f"cannot create the {what} {path}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise AuditLogError(f"the {what} {path} is a symlink or not a directory; refusing to use it")
    if info.st_mode & stat.S_IWOTH and not info.st_mode & stat.S_ISVTX:
        raise AuditLogError(f"the {what} {path} is writable by other users; refusing to use it (chmod o-w)")


class AuditLog:
    def __init__(self, path: Path, command: Sequence[str] = ()) -> None:
        self.path = path
        self.run_id = uuid.uuid4().hex[:12]
        #: records waiting for the next write, and whether a thread is writing (group commit)
        self._batch = threading.Condition(threading.Lock())
        self._queue: list[_Pending] = []
        self._writing = False
        #: the parsed lines of the log's tail and where they end (:meth:`recent`)
        self._reading = threading.Lock()
        self._tail = _ParsedTail()
        self._parsed_end = 0
        self._file: tuple[int, int] = (0, 0)
        #: the last whole line read, newline included (checked before reading on from it)
        self._last_line = b""
        self._user = whoami.user()
        self._operator = whoami.operator()
        # oob never takes secrets on its command line, so the command is safe to record
        self._command = " ".join(command)

    def __getstate__(self) -> dict[str, Any]:
        # to a worker process (``--workers``): the same file, run and people; fresh locks
        # and no parsed lines (the worker reads the log itself)
        return {"path": self.path, "run_id": self.run_id, "command": self._command}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]
        self.run_id = state["run_id"]
        self._command = state["command"]

    @property
    def lock_dir(self) -> Path:
        return self.path.parent / "locks"

    # -- reading --------------------------------------------------------------------------

    def _read_new(self) -> tuple[int, int, bytes]:
        """The log's size and the bytes added since the last read (from ``_parsed_end``):
        (size, start, bytes).  When the parsed lines no longer describe the file — another
        file (rotated, replaced; a new file may reuse the inode), one cut shorter, or one that
        grew past the tail since — they are dropped and the file's last ``_TAIL_BYTES`` are
        read instead (``_parsed_end`` is then 0).  Call with ``self._reading`` held."""
        wanted_from = self._parsed_end
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            self._tail = _ParsedTail()
            self._parsed_end = 0
            self._file = (0, 0)
            return 0, 0, b""
        except OSError as exc:
            raise AuditLogError(
                f"cannot read the audit log {self.path}: {exc.strerror or exc}"
                + (" (it is a symlink; refusing to follow it)" if os.path.islink(self.path) else "")
            ) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise AuditLogError(f"the audit log {self.path} is not a regular file; refusing to use it")
            # a writer holds the lock exclusively while its batch goes to disk (a page at a
            # time): half a batch read now would look like a torn record
            fcntl.flock(fd, fcntl.LOCK_SH)
            info = os.fstat(fd)
            # the same file, and still the bytes read last time (a new file may reuse the inode)
            same = (info.st_dev, info.st_ino) == self._file and (
                wanted_from == 0
                or os.pread(fd, len(self._last_line), wanted_from - len(self._last_line)) == self._last_line
            )
            if not same or info.st_size - _TAIL_BYTES > wanted_from:
                self._file = (info.st_dev, info.st_ino)
                self._tail = _ParsedTail()
                self._parsed_end = wanted_from = 0
            start = max(wanted_from, info.st_size - _TAIL_BYTES, 0)
            chunks: list[bytes] = []
            offset = start
            while offset < info.st_size:
                chunk = os.pread(fd, info.st_size - offset, offset)
                if not chunk:
                    break
                chunks.append(chunk)
                offset += len(chunk)
            return info.st_size, start, b"".join(chunks)
        except OSError as exc:
            raise AuditLogError(f"cannot read the audit log {self.path}: {exc.strerror or exc}") from None
        finally:
            os.close(fd)

    def _refresh(self) -> TornRecord | None:
        """Bring the parsed lines of the log's tail up to date, reading only what was added
        since the last call (the log is append-only: a whole line once read never changes);
        the torn end of the file, if it does not end with a newline.  Call with
        ``self._reading`` held."""
        size, start, data = self._read_new()
        if self._parsed_end == 0 and start > 0:
            # a tail that starts mid-file begins with a fragment of a line, by construction
            cut = data.find(b"\n")
            if cut < 0:
                return TornRecord(start, data[:200].decode(errors="replace")) if data else None
            start, data = start + cut + 1, data[cut + 1 :]
        lines = data.split(b"\n")
        last = lines.pop()
        offset = start
        for line in lines:
            self._tail.append(_parse_line(offset, line))
            offset += len(line) + 1
        if lines:
            self._last_line = lines[-1] + b"\n"
        self._parsed_end = offset
        self._tail.drop_before(size - _TAIL_BYTES)
        if last:  # the file does not end with a newline: its last record is torn
            return TornRecord(offset, last[:200].decode(errors="replace"))
        return None

    def recent(
        self,
        events: Iterable[str],
        window_s: float,
        *,
        host: str | None = None,
        machine: str | None = None,
        bmc: str | None = None,
        skip: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any] | TornRecord | None:
        """The newest record of ``events`` for ``host`` or for ``machine`` (``BmcConfig.machine``;
        a record written before records carried it: for ``bmc``, its address) (whichever matches)
        within the last ``window_s`` seconds; a :class:`TornRecord` when a line that is
        not a whole record stands among the records of that window (it could be the one
        wanted); None when there is neither.  ``skip(record)``: True passes over a matching
        record (newest first) and goes on looking.

        Each line is parsed once per AuditLog (a thousand hosts' checks against a log of
        thousands of recent records would otherwise parse it a thousand times)."""
        wanted = frozenset(events)
        keys = [("host", host), ("machine", machine), ("bmc", bmc)]
        with self._reading:
            torn = self._refresh()
            if torn is not None:
                return torn
            for line in self._tail.newest_first(
                time.time() - window_s, [k for k in keys if k[1] is not None]
            ):
                if line.entry is None:
                    return TornRecord(line.offset, line.text)
                if line.entry.get("event") in wanted and not (skip is not None and skip(line.entry)):
                    return dict(line.entry)
        return None

    # -- writing --------------------------------------------------------------------------

    def record(self, event: str, host: str | None = None, **fields: Any) -> None:
        """Append one whole record and make it durable, or raise :class:`AuditLogError`
        having left the log as it was."""
        entry: dict[str, Any] = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "run": self.run_id,
            "user": self._user,
            "operator": self._operator,
            "event": event,
        }
        if self._command:
            entry["command"] = self._command
        if host is not None:
            entry["host"] = host
        entry.update(fields)
        line = (json.dumps(entry, sort_keys=False, default=str) + "\n").encode()
        pending = _Pending(line)
        with self._batch:
            self._queue.append(pending)
            while not pending.done:
                if self._writing:
                    self._batch.wait()
                    continue
                # this thread writes everything queued so far, its own record included
                batch, self._queue = self._queue, []
                self._writing = True
                error: AuditLogError | None = None
                self._batch.release()
                try:
                    self._append(b"".join(p.line for p in batch))
                except AuditLogError as exc:
                    error = exc
                except BaseException as exc:
                    # anything else (a bug, Ctrl-C in the writer): no record of the batch may
                    # count as written; the writer's own caller sees the original exception
                    error = AuditLogError(
                        f"cannot write the audit log {self.path}: {type(exc).__name__}; the record was not written"
                    )
                    raise
                finally:
                    self._batch.acquire()
                    self._writing = False
                    for written in batch:
                        written.done, written.error = True, error
                    self._batch.notify_all()
        if pending.error is not None:
            # each caller its own copy: callers name their host on the error they get
            raise copy.copy(pending.error)

    def _append(self, line: bytes) -> None:
        private_directory(self.path.parent, "audit log directory")
        flags = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        created = False
        try:
            try:
                fd = os.open(self.path, flags)
            except FileNotFoundError:
                try:
                    fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o600)
                    created = True
                except FileExistsError:  # another process (an oob worker) made it meanwhile
                    fd = os.open(self.path, flags)
        except OSError as exc:
            symlink = " (it is a symlink; refusing to write through it)" if os.path.islink(self.path) else ""
            raise AuditLogError(
                f"cannot write the audit log {self.path}: {exc.strerror or exc}{symlink}"
            ) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise AuditLogError(f"the audit log {self.path} is not a regular file; refusing to use it")
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            try:
                _write_all(fd, line)
                os.fsync(fd)
                if created:
                    _fsync_directory(self.path.parent)
            except OSError as exc:
                _cut_back(fd, size)
                raise AuditLogError(
                    f"cannot write the audit log {self.path}: {exc.strerror or exc}; the record was not written"
                ) from None
        finally:
            os.close(fd)  # also drops the flock


@dataclass(frozen=True)
class _Line:
    """One line of the log as :meth:`AuditLog.recent` reads it."""

    offset: int
    #: the record; None: not a whole record (``text`` shows it)
    entry: dict[str, Any] | None
    #: its time, seconds since the epoch
    when: float = 0.0
    text: str = ""


class _ParsedTail:
    """The parsed lines of the log's tail, in file order, indexed so that a lookup costs the
    records of one host, not the whole tail (a thousand hosts, each looked up twice, against
    thousands of recent records: that scan was a fifth of oob's CPU).

    :meth:`newest_first` gives what a scan from the end would meet before it stops: the
    matching records and the lines that are not whole records, newest first, down to the
    newest whole record older than the window's start (a scan stops there; lines are in
    the order they were written, their times nearly so).  That stop is found by bisection
    on the running minimum of the times from each line to the end, which never decreases
    along the file."""

    def __init__(self) -> None:
        self._lines: list[_Line] = []
        #: sequence number of ``_lines[0]`` (lines dropped from the front keep their numbers)
        self._first = 0
        #: ("host" | "machine" | "bmc", value) -> sequence numbers of the matching records
        self._keyed: dict[tuple[str, str], list[int]] = {}
        #: sequence numbers of the lines that are not whole records
        self._torn: list[int] = []
        #: per line, the earliest time of it and every whole record after it (inf for none)
        self._suffix_min: list[float] = []

    def __bool__(self) -> bool:
        return bool(self._lines)

    def append(self, line: _Line) -> None:
        seq = self._first + len(self._lines)
        self._lines.append(line)
        entry = line.entry
        if entry is None:
            self._torn.append(seq)
            self._suffix_min.append(math.inf)
            return
        for name in ("host", "machine") if "machine" in entry else ("host", "bmc"):
            value = entry.get(name)
            if isinstance(value, str):
                self._keyed.setdefault((name, value), []).append(seq)
        floor = self._suffix_min
        floor.append(line.when)
        index = len(floor) - 2
        while index >= 0 and floor[index] > line.when:  # a line dated before those above it
            floor[index] = line.when
            index -= 1

    def drop_before(self, offset: int) -> None:
        """Forget the lines that start before ``offset`` (they left the tail)."""
        count = 0
        while count < len(self._lines) and self._lines[count].offset < offset:
            count += 1
        if count:
            del self._lines[:count]
            del self._suffix_min[:count]
            self._first += count

    def newest_first(self, since: float, keys: list[tuple[str, str | None]]) -> Iterator[_Line]:
        """Matching records (any of ``keys``) and torn lines, newest first, that a scan from
        the end meets before the newest whole record dated before ``since``."""
        stop = self._first + bisect.bisect_left(self._suffix_min, since) - 1  # -1 + first: none
        lowest = max(stop + 1, self._first)
        found: set[int] = set(self._torn[bisect.bisect_left(self._torn, lowest) :])
        for name, value in keys:
            seqs = self._keyed.get((name, value or ""), [])
            found.update(seqs[bisect.bisect_left(seqs, lowest) :])
        for seq in sorted(found, reverse=True):
            yield self._lines[seq - self._first]


def _parse_line(offset: int, line: bytes) -> _Line:
    try:
        entry = json.loads(line)
        when = datetime.fromisoformat(entry["ts"])
        if when.tzinfo is None:
            raise ValueError("naive timestamp")
        if not isinstance(entry, dict):
            raise TypeError("not an object")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return _Line(offset, None, text=line[:200].decode(errors="replace"))
    return _Line(offset, entry, when.timestamp())


class _Pending:
    """One record waiting for the write that makes it durable."""

    __slots__ = ("done", "error", "line")

    def __init__(self, line: bytes) -> None:
        self.line = line
        self.done = False
        self.error: AuditLogError | None = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:  # pragma: no cover - os.write raises rather than return 0 for files
            raise OSError(28, "short write")
        view = view[written:]


def _cut_back(fd: int, size: int) -> None:
    """Remove the torn end of our own record. If even that fails, the torn line stays and
    the repeat guard will refuse on it (it never skips one): safe, and said loudly."""
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    except OSError:
        pass


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
