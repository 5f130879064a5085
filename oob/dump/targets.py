"""Where dumps land, and the few things the watcher does there.

A :class:`DumpTarget` lists directories, stats files, and reads the first bytes or the
last bytes of a file.  Nothing more: the watcher never copies a vmcore.

Everything a target says is hostile until checked (a crashed host wrote it):

- every call is bounded in time (:func:`call_bounds`: a per-call limit, and the watch's
  deadline); a call that does not answer is abandoned and reported as a stalled target
  naming the server and path, never waited for at the end or on Ctrl-C;
- only regular files are read, never through a symbolic link below the target's path, and
  at most :data:`MAX_READ` bytes at a time: a FIFO, a device, ``vmcore -> /dev/zero`` or
  ``vmcore-dmesg.txt -> /etc/shadow`` are refused;
- a listing holds at most :data:`MAX_ENTRIES` entries (:class:`Listing` says when there
  were more), names holding ``/`` or NUL are dropped, sizes and times are checked.

- ``file:///path``: a local directory or an NFS export mounted here (:class:`FileTarget`).
  Calls run in daemon threads, so a hung NFS server blocks one thread, not the event loop
  nor the exit.
- ``ssh://user@server[:port]/path``: a dump server, over SFTP (:class:`SshTarget`).  All
  targets on one server share **one** SSH connection (:class:`Targets` keeps them), so a
  hundred hosts dumping to one server cost one login.  The connection is made by
  :mod:`oob.ssh` (keys only, host keys checked against known_hosts, never a password); its
  failures are :class:`~oob.errors.DumpTargetError` / :class:`~oob.errors.HostKeyError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import math
import os
import posixpath
import stat as stat_module
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import unquote, urlsplit

from oob.dump.layouts import EntryKind, FileInfo
from oob.errors import DumpTargetError, UsageError
from oob.ssh import DEFAULT_SSH_PORT, DUMP_SERVER, SshAddress, SshOptions, SshPool

#: seconds one listing, stat or read may take before the target is reported stalled
OP_TIMEOUT = 30.0
#: entries read from one directory per look; the rest are left unread (and said so)
MAX_ENTRIES = 10_000
#: bytes one read returns at most (the watcher asks for 256 KiB at most)
MAX_READ = 4 * 1024 * 1024
#: a size above this (1 PiB) is not believed, and counts as 0
MAX_SIZE = 1 << 50
#: worker threads of one file:// target at once (stuck ones included)
FILE_THREADS = 16


@dataclass(frozen=True)
class TargetSpec:
    """A parsed dump target URL (no I/O)."""

    url: str
    scheme: Literal["file", "ssh"]
    path: str
    user: str | None = None
    server: str | None = None
    #: None: not in the URL, so the ssh configuration's Port (then 22)
    port: int | None = None

    @property
    def ssh(self) -> SshAddress:
        """Where an ``ssh://`` target logs in (targets with the same address share one connection)."""
        assert self.scheme == "ssh" and self.server is not None and self.user is not None
        return SshAddress(self.user, self.server, self.port)

    @property
    def key(self) -> str:
        """Targets with the same key are the same directory (hosts sharing it are listed once)."""
        path = posixpath.normpath(self.path)
        if self.scheme == "file":
            return f"file://{path}"
        return f"ssh://{self.user}@{self.server_address}:{self.port or DEFAULT_SSH_PORT}{path}"

    @property
    def server_address(self) -> str:
        server = (self.server or "").lower()
        return f"[{server}]" if ":" in server else server

    def path_of(self, *parts: str) -> str:
        """The absolute path of a directory or file under the target, on its own machine."""
        return posixpath.join(self.path, *parts)

    def location(self, *parts: str) -> str:
        """Where a directory or file is, as an engineer would type it."""
        path = posixpath.join(self.path, *parts)
        if self.scheme == "file":
            return path
        port = "" if self.port in (None, DEFAULT_SSH_PORT) else f":{self.port}"
        return f"{self.user}@{self.server_address}{port}:{path}"


def parse_target(url: str) -> TargetSpec:
    """``ssh://user@server[:port]/path``, ``file:///path`` (or a bare absolute path)."""
    text = url.strip()
    if text.startswith("/"):
        return TargetSpec(url=text, scheme="file", path=posixpath.normpath(text))
    expected = "expected ssh://USER@SERVER[:PORT]/PATH or file:///PATH"
    parts = urlsplit(text)
    if parts.query or parts.fragment:
        raise UsageError(f"dump target '{text}': {expected} (no '?' or '#' parts)")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise UsageError(f"dump target '{text}': a file:// target is a local path (file:///PATH)")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise UsageError(f"dump target '{text}': {expected}")
        return TargetSpec(url=text, scheme="file", path=posixpath.normpath(path))
    if parts.scheme == "ssh":
        if parts.password is not None:
            raise UsageError(f"dump target '{text}': no password in the URL; ssh uses keys")
        try:
            port = parts.port
        except ValueError:
            raise UsageError(f"dump target '{text}': the port must be a number from 1 to 65535") from None
        if not parts.username or not parts.hostname:
            raise UsageError(f"dump target '{text}': {expected} (user and server are required)")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise UsageError(f"dump target '{text}': {expected} (the path must be absolute)")
        return TargetSpec(
            url=text,
            scheme="ssh",
            path=posixpath.normpath(path),
            user=unquote(parts.username),
            server=parts.hostname,
            port=port,
        )
    raise UsageError(f"dump target '{text}': {expected}")


def _check_parts(parts: tuple[str, ...]) -> None:
    # names come from the server's own listings; still, never let one climb out of the target
    for part in parts:
        if not part or part in (".", "..") or "/" in part or "\0" in part:
            raise DumpTargetError(f"refusing the path component {part!r}")


def name_problem(name: str) -> str | None:
    """Why a listed name is not taken (None: it is fine).  Control characters are kept: the
    renderer escapes them; a name that could address another file is not."""
    if not name or name in (".", ".."):
        return "empty, '.' or '..'"
    if "/" in name or "\0" in name:
        return "holds '/' or NUL"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "not UTF-8"
    return None


def _sane_size(size: int | None) -> int:
    return size if size is not None and 0 <= size <= MAX_SIZE else 0


def _sane_mtime(mtime: float | None) -> float:
    return mtime if mtime is not None and math.isfinite(mtime) and 0 <= mtime < 1e11 else 0.0


def kind_of(mode: int | None) -> EntryKind:
    """An lstat mode as the watcher sees it; no mode at all is "other" (never read)."""
    if mode is None:
        return "other"
    if stat_module.S_ISREG(mode):
        return "file"
    if stat_module.S_ISDIR(mode):
        return "dir"
    if stat_module.S_ISLNK(mode):
        return "symlink"
    return "other"


_KIND_WORDS = {"dir": "a directory", "symlink": "a symbolic link", "other": "a FIFO, device or socket"}


@dataclass(frozen=True)
class Listing:
    """One bounded look at a directory: at most :data:`MAX_ENTRIES` entries with good names."""

    entries: tuple[FileInfo, ...]
    #: entries were left unread (more than MAX_ENTRIES): a new one may be among them
    truncated: bool = False
    #: entries skipped for their name (holding '/' or NUL, not UTF-8)
    bad_names: int = 0
    #: the most entries one listing holds
    limit: int = MAX_ENTRIES

    def __iter__(self) -> Iterator[FileInfo]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def warnings(self) -> list[str]:
        found = []
        if self.truncated:
            found.append(
                f"more than {self.limit} entries: only the first {self.limit} are read each time, "
                "so a new dump directory may be missed (move old dumps away)"
            )
        if self.bad_names:
            found.append(
                f"{self.bad_names} entr{'y' if self.bad_names == 1 else 'ies'} with an impossible name "
                "('/', NUL or not UTF-8) ignored"
            )
        return found


class _ListingBuilder:
    def __init__(self, limit: int | None = None) -> None:
        self.limit = MAX_ENTRIES if limit is None else limit
        self.entries: list[FileInfo] = []
        self.truncated = False
        self.bad_names = 0

    def add(self, name: str, size: int | None, mtime: float | None, mode: int | None) -> bool:
        """Take one entry; False once the listing is full (stop reading)."""
        if name in (".", ".."):
            return True
        if name_problem(name) is not None:
            self.bad_names += 1
            return True
        if len(self.entries) >= self.limit:
            self.truncated = True
            return False
        self.entries.append(FileInfo(name, _sane_size(size), _sane_mtime(mtime), kind_of(mode)))
        return True

    def build(self) -> Listing:
        return Listing(tuple(self.entries), self.truncated, self.bad_names, self.limit)


# -- deadlines ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallBounds:
    """How long one call on a target may take: ``op_timeout`` seconds, and never past
    ``deadline`` (the event loop's clock; the watch's end)."""

    op_timeout: float = OP_TIMEOUT
    deadline: float | None = None


_BOUNDS: ContextVar[CallBounds | None] = ContextVar("oob_dump_call_bounds", default=None)


@contextlib.contextmanager
def call_bounds(op_timeout: float = OP_TIMEOUT, deadline: float | None = None) -> Iterator[None]:
    """Calls on targets made inside (and in the tasks started inside) keep these bounds."""
    token = _BOUNDS.set(CallBounds(op_timeout, deadline))
    try:
        yield
    finally:
        _BOUNDS.reset(token)


_TICKETS = itertools.count()
#: calls given up on, still running (held so they are not collected mid-flight)
_ABANDONED: set[asyncio.Future[Any]] = set()


def _abandon(task: asyncio.Future[Any]) -> None:
    task.cancel()
    _ABANDONED.add(task)
    task.add_done_callback(_forget)


def _forget(task: asyncio.Future[Any]) -> None:
    _ABANDONED.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: an abandoned call's error is no news


_T = TypeVar("_T")


@dataclass(frozen=True)
class PendingCall:
    """A call on a target that has not answered yet."""

    what: str
    location: str
    #: the event loop's clock when it started
    started: float

    def describe(self, now: float) -> str:
        return f"{self.what} of {self.location} unanswered for {max(0.0, now - self.started):.0f} s"


async def bounded(
    what: str,
    location: str,
    work: Callable[[], Coroutine[Any, Any, _T]],
    pending: dict[int, PendingCall] | None = None,
) -> _T:
    """Run one call on a target within the current :class:`CallBounds` (listed in
    ``pending`` while it runs).

    The call runs as its own task and is *abandoned* when the bound passes or the caller is
    cancelled (Ctrl-C): nothing here waits for it to clean up, because the clean-up (closing
    an SFTP handle) would wait for the very server that stopped answering.  The connection's
    close later ends what is left of it.
    """
    bounds = _BOUNDS.get() or CallBounds()
    loop = asyncio.get_running_loop()
    limit, by_deadline = bounds.op_timeout, False
    if bounds.deadline is not None and bounds.deadline - loop.time() < limit:
        limit, by_deadline = bounds.deadline - loop.time(), True
    if limit <= 0:
        raise DumpTargetError(f"{location}: {what} not started: the watch's deadline has passed")
    task = asyncio.ensure_future(work())
    ticket = next(_TICKETS)
    if pending is not None:
        pending[ticket] = PendingCall(what, location, loop.time())
    try:
        done, _ = await asyncio.wait({task}, timeout=limit)
    except BaseException:
        # cancelled (Ctrl-C): the call stays listed as pending, for the report
        _abandon(task)
        raise
    if pending is not None:
        pending.pop(ticket, None)
    if not done:
        _abandon(task)
        bound = "the watch's deadline came" if by_deadline else "its time limit passed"
        raise DumpTargetError(
            f"{location}: stalled: no answer to {what} within {limit:.1f} s ({bound}); "
            "the file system there may be hung (NFS?)"
        )
    return task.result()


class DumpTarget(ABC):
    """The read-only operations the watcher needs on a dump target.

    Every call is bounded (:func:`call_bounds`), never follows a symbolic link below the
    target's own path, reads regular files only, and reads at most :data:`MAX_READ` bytes.
    """

    spec: TargetSpec
    #: calls under way (reported when the watch ends or is interrupted while one hangs)
    pending: dict[int, PendingCall]

    def pending_calls(self) -> list[str]:
        """The calls still unanswered, oldest first, as sentences."""
        now = asyncio.get_running_loop().time()
        return [call.describe(now) for call in sorted(self.pending.values(), key=lambda c: c.started)]

    @abstractmethod
    async def listdir(self, *parts: str) -> Listing | None:
        """Entries of the target directory (or a directory under it); None if it does not exist.
        A directory under the target that is a symbolic link is refused (DumpTargetError)."""

    @abstractmethod
    async def stat(self, *parts: str) -> FileInfo | None:
        """One entry, as lstat sees it (a symbolic link is reported as one); None if it does not exist."""

    @abstractmethod
    async def read_head(self, *parts: str, size: int) -> bytes:
        """Up to ``size`` bytes from the start of a regular file (anything else is refused)."""

    @abstractmethod
    async def read_tail(self, *parts: str, size: int) -> bytes:
        """Up to ``size`` bytes from the end of a regular file (anything else is refused)."""

    async def close(self) -> None:  # noqa: B027 - a hook: most targets hold nothing
        """Release what this target holds (shared connections are closed by :class:`Targets`)."""


def _refuse_kind(location: str, kind: EntryKind, wanted: str = "regular file") -> DumpTargetError:
    return DumpTargetError(f"{location}: {_KIND_WORDS.get(kind, kind)}, not a {wanted}; not read")


class FileTarget(DumpTarget):
    """A local directory (or an NFS mount here).

    Calls run in daemon threads of their own: a thread stuck in the kernel (a hung NFS
    mount) cannot be killed, so the wait for it is bounded and it is abandoned; at most
    :data:`FILE_THREADS` run at once per target, so stuck ones cannot pile up without end
    (once all are stuck, later calls wait for a free one and report the target stalled).
    Below the target's path every step is opened with ``O_NOFOLLOW`` relative to its
    parent's descriptor: a symbolic link is never followed, even if swapped in meanwhile.
    """

    def __init__(self, spec: TargetSpec) -> None:
        self.spec = spec
        self.pending = {}
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    def _where(self, parts: tuple[str, ...]) -> str:
        _check_parts(parts)
        return self.spec.location(*parts)

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:
            self._slots = (loop, asyncio.Semaphore(FILE_THREADS))
        return self._slots[1]

    async def _run(self, what: str, location: str, function: Callable[[], _T]) -> _T:
        async def work() -> _T:
            semaphore = self._semaphore()
            await semaphore.acquire()
            return await _in_daemon_thread(function, semaphore.release)

        return await bounded(what, location, work, self.pending)

    async def listdir(self, *parts: str) -> Listing | None:
        location = self._where(parts)
        return await self._run("list", location, lambda: self._list(parts, location))

    async def stat(self, *parts: str) -> FileInfo | None:
        location = self._where(parts)
        return await self._run("stat", location, lambda: self._stat(parts, location))

    async def read_head(self, *parts: str, size: int) -> bytes:
        location = self._where(parts)
        return await self._run("read", location, lambda: self._read(parts, location, size, False))

    async def read_tail(self, *parts: str, size: int) -> bytes:
        location = self._where(parts)
        return await self._run("read", location, lambda: self._read(parts, location, size, True))

    # -- in the worker thread ------------------------------------------------------------------

    def _open_dir(self, parts: tuple[str, ...], location: str) -> int | None:
        """A descriptor of the directory ``parts`` below the target; None if it is missing."""
        try:
            # the target's own path is the engineer's choice: it may be a symbolic link
            fd = os.open(self.spec.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise DumpTargetError(f"{self.spec.path}: no such directory") from None
        except OSError as exc:
            raise _os_error(self.spec.path, exc) from None
        for part in parts:
            try:
                child = os.open(
                    part,
                    os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                    dir_fd=fd,
                )
            except FileNotFoundError:
                return None
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    kind = self._lkind(fd, part)
                    raise _refuse_kind(location, kind, "directory") from None
                raise _os_error(location, exc) from None
            finally:
                os.close(fd)
            fd = child
        return fd

    @staticmethod
    def _lkind(dir_fd: int, name: str) -> EntryKind:
        try:
            return kind_of(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
        except OSError:
            return "other"

    def _list(self, parts: tuple[str, ...], location: str) -> Listing | None:
        fd = self._open_dir(parts, location)
        if fd is None:
            return None
        builder = _ListingBuilder()
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # renamed between listing and stat (vmcore-incomplete -> vmcore)
                    if not builder.add(entry.name, info.st_size, info.st_mtime, info.st_mode):
                        break
        except OSError as exc:
            raise _os_error(location, exc) from None
        finally:
            os.close(fd)
        return builder.build()

    def _stat(self, parts: tuple[str, ...], location: str) -> FileInfo | None:
        fd = self._open_dir(parts[:-1], location)
        if fd is None:
            return None
        try:
            info = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False) if parts else os.fstat(fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _os_error(location, exc) from None
        finally:
            os.close(fd)
        return FileInfo(
            parts[-1] if parts else "",
            _sane_size(info.st_size),
            _sane_mtime(info.st_mtime),
            kind_of(info.st_mode),
        )

    def _read(self, parts: tuple[str, ...], location: str, size: int, tail: bool) -> bytes:
        if not parts:
            raise DumpTargetError(f"{location}: a directory, not a regular file; not read")
        dir_fd = self._open_dir(parts[:-1], location)
        if dir_fd is None:
            return b""
        name = parts[-1]
        try:
            # lstat first: opening a device can do things (rewind a tape); a FIFO or a
            # socket is refused before it is touched
            before = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if kind_of(before.st_mode) != "file":
                raise _refuse_kind(location, kind_of(before.st_mode))
            fd = os.open(
                name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, dir_fd=dir_fd
            )
        except FileNotFoundError:
            return b""
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _refuse_kind(location, "symlink") from None
            raise _os_error(location, exc) from None
        finally:
            os.close(dir_fd)
        try:
            info = os.fstat(fd)
            # what was opened is what was looked at (not something swapped in between)
            if not stat_module.S_ISREG(info.st_mode) or (info.st_dev, info.st_ino) != (
                before.st_dev,
                before.st_ino,
            ):
                raise DumpTargetError(f"{location}: replaced while being opened; not read")
            want = max(0, min(size, MAX_READ))
            offset = max(0, info.st_size - want) if tail else 0
            chunks: list[bytes] = []
            while want > 0:
                data = os.pread(fd, want, offset)
                if not data:
                    break
                chunks.append(data)
                want -= len(data)
                offset += len(data)
            return b"".join(chunks)
        except OSError as exc:
            raise _os_error(location, exc) from None
        finally:
            os.close(fd)


def _os_error(location: str, exc: OSError) -> DumpTargetError:
    if isinstance(exc, PermissionError):
        return DumpTargetError(f"{location}: permission denied")
    if isinstance(exc, NotADirectoryError):
        return DumpTargetError(f"{location}: not a directory")
    return DumpTargetError(f"{location}: {exc.strerror or exc}")


async def _in_daemon_thread(function: Callable[[], _T], done: Callable[[], None]) -> _T:
    """``function()`` in a new daemon thread; ``done()`` runs on the loop when the thread ends.

    Not ``asyncio.to_thread``: the default executor's threads are joined when the loop and
    the interpreter shut down, so one stuck in the kernel would keep oob from exiting, even
    on Ctrl-C.  A daemon thread is simply left behind.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    def settle(result: _T | None, error: BaseException | None) -> None:
        done()
        if future.done():
            return  # given up on meanwhile
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        result: _T | None = None
        error: BaseException | None = None
        try:
            result = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting task, which raises it
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, result, error)

    try:
        threading.Thread(target=run, name="oob-dump-fs", daemon=True).start()
    except BaseException:
        done()
        raise
    return await future


@contextlib.asynccontextmanager
async def _open_regular(sftp: Any, path: str, location: str, verb: str) -> AsyncIterator[tuple[Any, Any]]:
    """An SFTP handle on a regular file and its attributes: LSTAT before the open (a link,
    FIFO or device is refused), FSTAT after it (something swapped in between is refused)."""
    kind = kind_of((await sftp.lstat(path)).permissions)
    if kind != "file":
        raise _refuse_kind(location, kind)
    async with sftp.open(path, "rb") as handle:
        attrs = await handle.stat()
        if kind_of(attrs.permissions) != "file":
            raise DumpTargetError(f"{location}: replaced while being opened; not {verb}")
        yield handle, attrs


class SshTarget(DumpTarget):
    """A directory on a dump server, over SFTP.

    SFTP v3 has no ``O_NOFOLLOW``: each entry is looked at with LSTAT before it is opened
    (a symbolic link, a FIFO or a device is refused; opening a FIFO would block the
    server's sftp-server), and the opened handle is checked again with FSTAT.  A link
    swapped in between those two calls is not caught on SFTP (it is on file:// targets).
    """

    def __init__(self, spec: TargetSpec, pool: SshPool) -> None:
        self.spec = spec
        self.pool = pool
        self.pending = {}

    def _path(self, parts: tuple[str, ...]) -> str:
        _check_parts(parts)
        return posixpath.join(self.spec.path, *parts)

    async def _call(
        self, what: str, parts: tuple[str, ...], operation: Callable[[Any, str, str], Awaitable[_T]]
    ) -> _T | None:
        import asyncssh

        path = self._path(parts)
        location = self.spec.location(*parts)

        async def work() -> _T | None:
            sftp = await self.pool.sftp(self.spec.ssh)
            try:
                return await operation(sftp, path, location)
            except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
                return None
            except asyncssh.SFTPPermissionDenied:
                raise DumpTargetError(f"{location}: {what}: permission denied") from None
            except (
                asyncssh.SFTPConnectionLost,
                asyncssh.SFTPNoConnection,
                asyncssh.ConnectionLost,
                asyncssh.DisconnectError,
                OSError,
            ) as exc:
                # the next call opens a new connection
                self.pool.forget(self.spec.ssh)
                reason = getattr(exc, "reason", "") or str(exc) or type(exc).__name__
                raise DumpTargetError(f"{location}: connection lost ({reason})") from None
            except asyncssh.SFTPError as exc:
                raise DumpTargetError(f"{location}: {what}: {exc.reason}") from None
            except UnicodeError:
                raise DumpTargetError(
                    f"{location}: {what}: the server sent a name that is not UTF-8"
                ) from None

        return await bounded(what, location, work, self.pending)

    async def listdir(self, *parts: str) -> Listing | None:
        async def operation(sftp: Any, path: str, location: str) -> Listing:
            if parts:
                # OPENDIR follows a link: look first
                kind = kind_of((await sftp.lstat(path)).permissions)
                if kind != "dir":
                    raise _refuse_kind(location, kind, "directory")
            builder = _ListingBuilder()
            # bytes in, bytes out: a name that is not UTF-8 is counted, not fatal
            async with contextlib.aclosing(sftp.scandir(path.encode("utf-8"))) as entries:
                async for entry in entries:
                    try:
                        name = bytes(entry.filename).decode("utf-8")
                    except UnicodeDecodeError:
                        builder.bad_names += 1
                        continue
                    attrs = entry.attrs
                    if not builder.add(
                        name,
                        attrs.size,
                        None if attrs.mtime is None else float(attrs.mtime),
                        attrs.permissions,
                    ):
                        break
            return builder.build()

        result = await self._call("list", parts, operation)
        if result is None and not parts:
            raise DumpTargetError(f"{self.spec.location()}: no such directory")
        return result

    async def stat(self, *parts: str) -> FileInfo | None:
        async def operation(sftp: Any, path: str, location: str) -> FileInfo:
            attrs = await sftp.lstat(path)
            return FileInfo(
                parts[-1] if parts else "",
                _sane_size(attrs.size),
                _sane_mtime(None if attrs.mtime is None else float(attrs.mtime)),
                kind_of(attrs.permissions),
            )

        return await self._call("stat", parts, operation)

    async def read_head(self, *parts: str, size: int) -> bytes:
        return await self._read(parts, size, tail=False)

    async def read_tail(self, *parts: str, size: int) -> bytes:
        return await self._read(parts, size, tail=True)

    async def copy_file(
        self, *parts: str, write: Callable[[bytes], object], limit: int, chunk: int = 1024 * 1024
    ) -> int:
        """Copy a regular file to ``write`` in chunks (``oob analyze --fetch``); at most
        ``limit`` bytes, each chunk within :data:`OP_TIMEOUT`. Returns the bytes copied.

        The whole copy is one call under the caller's :func:`call_bounds` (its deadline)."""

        async def operation(sftp: Any, path: str, location: str) -> int:
            async with _open_regular(sftp, path, location, "copied") as (handle, attrs):
                size = _sane_size(attrs.size)
                if size > limit:
                    raise DumpTargetError(
                        f"{location}: {size} bytes, more than the {limit} allowed here; not copied"
                    )
                copied = 0
                while copied < size:
                    try:
                        data = await asyncio.wait_for(
                            handle.read(min(chunk, size - copied), copied), OP_TIMEOUT
                        )
                    except TimeoutError:
                        raise DumpTargetError(
                            f"{location}: stalled: no data for {OP_TIMEOUT:.0f} s after {copied} bytes"
                        ) from None
                    if not data:
                        break
                    write(bytes(data))
                    copied += len(data)
                return copied

        return await self._call("copy", parts, operation) or 0

    async def _read(self, parts: tuple[str, ...], size: int, tail: bool) -> bytes:
        async def operation(sftp: Any, path: str, location: str) -> bytes:
            async with _open_regular(sftp, path, location, "read") as (handle, attrs):
                want = max(0, min(size, MAX_READ))
                offset = max(0, _sane_size(attrs.size) - want) if tail else 0
                data = await handle.read(want, offset)
                return bytes(data[:want])

        return await self._call("read", parts, operation) or b""


class Targets:
    """Makes dump targets; targets on one SSH server share one connection."""

    def __init__(self, ssh: SshOptions | None = None) -> None:
        self.ssh = SshPool(ssh, DUMP_SERVER)
        self._targets: dict[str, DumpTarget] = {}

    def get(self, url: str | TargetSpec) -> DumpTarget:
        spec = parse_target(url) if isinstance(url, str) else url
        target = self._targets.get(spec.key)
        if target is None:
            target = FileTarget(spec) if spec.scheme == "file" else SshTarget(spec, self.ssh)
            self._targets[spec.key] = target
        return target

    @property
    def connections_opened(self) -> int:
        return self.ssh.opened

    async def close(self) -> None:
        for target in self._targets.values():
            await target.close()
        await self.ssh.close()
