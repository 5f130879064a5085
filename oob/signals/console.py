"""Record a host's serial console during a crash: what the panic, the crash kernel and kdump print.

::

    capture = ConsoleCapture(host, password, directory=console_dir)
    capture.start()              # before the NMI; False (and .warning) if it cannot: send the NMI anyway
    try:
        ...                      # send the NMI, watch the dump
    finally:
        result = capture.stop()  # deactivates the console and closes the session, also on Ctrl-C
    if result.problem:
        for line in result.last_lines: ...

The events to emit are made by :func:`recording_event` / :func:`unavailable_event` (after
``start``), :func:`milestone_event` (from ``on_milestone``) and :func:`saved_event` (after
``stop``).

Only hosts whose BMC speaks IPMI (:func:`console_supported`): the console comes over
IPMI Serial-over-LAN (:class:`oob.drivers.ipmi.console.SolConsole`), with the
credentials the IPMI driver uses (``bmc.username``, the resolved ``bmc.password``).

The file: ``<directory>/<host>-<UTC time>.console.log`` (:func:`console_path`), created
mode 0600 and never over an existing file (``-2``, ``-3``... are added), in a private
directory (0700, not a symlink).  What the console sends is stored as it came, control
characters and all (a terminal replay shows the colours); it is bounded to ``max_bytes``
(8 MiB), keeping the *end*: when it would grow past that, the oldest half goes.  Every
line shown to a person (:attr:`ConsoleResult.last_lines`, milestone lines) has passed
through :func:`oob.safetext.printable`.

Milestones (:class:`Milestone`) are recognised on the fly from the lines kernels and the
distributions' kdump scripts print (RHEL ``kdump.sh``, Debian ``kdump-config``; SUSE's
``Saving dump`` is kdumptool's wording, not checked against a real SUSE console), each
recorded once with the time its line arrived:

``panic``                 ``Kernel panic - not syncing``, ``sysrq: Trigger a crash``, ``Uhhuh. NMI``
``crash_kernel``          the crash kernel booting: a command line with ``elfcorehdr=``, or
                          ``Linux version`` after the panic
``kdump_saving``          ``kdump: saving to`` / ``saving vmcore``, ``kdump-tools: ... running
                          makedumpfile``, ``Saving dump``
``kdump_saved``           ``kdump: saving vmcore complete``, ``kdump-tools: saved vmcore in``
``kdump_failed``          ``kdump: saving vmcore failed``, ``kdump-tools: failed to save vmcore``
``rebooting``             after the panic: ``reboot: Restarting system``, ``Rebooting in N seconds``
"""

from __future__ import annotations

import collections
import enum
import errno
import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from oob.audit import default_audit_path, private_directory
from oob.errors import OobError
from oob.events import Event, EventKind, Level
from oob.model import Host
from oob.safetext import printable

if TYPE_CHECKING:  # pyghmi is imported only when a console is opened
    from oob.drivers.ipmi.console import Ended, SolConsole

log = logging.getLogger(__name__)

#: the largest console file kept per host and crash (its end is kept)
MAX_BYTES = 8 * 1024 * 1024
#: lines kept for "show the last lines when something goes wrong"
LAST_LINES = 25
#: a console line longer than this is cut into pieces (a line of binary noise has no end)
MAX_LINE = 4096
#: files one host may have with the same name stem (same second) before oob gives up
MAX_NAME_TRIES = 100


class MilestoneKind(enum.StrEnum):
    PANIC = "panic"
    CRASH_KERNEL = "crash_kernel"
    KDUMP_SAVING = "kdump_saving"
    KDUMP_SAVED = "kdump_saved"
    KDUMP_FAILED = "kdump_failed"
    REBOOTING = "rebooting"


_PATTERNS: tuple[tuple[MilestoneKind, re.Pattern[str]], ...] = (
    (
        MilestoneKind.PANIC,
        re.compile(r"Kernel panic - not syncing|sysrq: Trigger a crash|Uhhuh\. NMI received"),
    ),
    (MilestoneKind.CRASH_KERNEL, re.compile(r"[Cc]ommand line:.*\belfcorehdr=")),
    (
        MilestoneKind.KDUMP_SAVED,
        re.compile(r"kdump(\[\d+\])?: saving vmcore complete|kdump-tools: saved vmcore in"),
    ),
    (
        MilestoneKind.KDUMP_FAILED,
        re.compile(r"kdump(\[\d+\])?: saving vmcore failed|kdump-tools: failed to save vmcore"),
    ),
    (
        MilestoneKind.KDUMP_SAVING,
        re.compile(
            r"kdump(\[\d+\])?: saving (to |vmcore$)|kdump-tools(\[\d+\])?: .*running makedumpfile|Saving dump\b"
        ),
    ),
    (MilestoneKind.REBOOTING, re.compile(r"reboot: (Restarting system|Power down)|Rebooting in \d+ seconds")),
)
#: a new kernel starting: the crash kernel when it comes after the panic
_LINUX_VERSION = re.compile(r"\] Linux version \S+")
#: ESC sequences (colours, cursor moves) removed before matching, never before storing
_ESCAPES = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_])")


@dataclass(frozen=True)
class Milestone:
    kind: MilestoneKind
    #: when its line arrived (UTC)
    at: datetime
    #: the line, made printable
    line: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "at": self.at.isoformat(), "line": self.line}


@dataclass(frozen=True)
class ConsoleResult:
    """What one host's serial console showed during the crash."""

    host: str
    #: the console file; None when the capture never started
    path: Path | None
    #: bytes received from the console, and bytes in the file (the end of them)
    bytes_received: int = 0
    bytes_kept: int = 0
    #: the last lines, printable (the line still being written last, e.g. a login prompt)
    last_lines: tuple[str, ...] = ()
    milestones: tuple[Milestone, ...] = ()
    started_at: datetime | None = None
    ended_at: datetime | None = None
    #: why it ended: "stopped" (by oob), "deactivated" (by the BMC or someone else), "lost"
    ended: str | None = None
    #: the capture could not start, or ended early: one printable line
    warning: str | None = None

    def milestone(self, kind: MilestoneKind) -> Milestone | None:
        return next((m for m in self.milestones if m.kind is kind), None)

    @property
    def truncated(self) -> bool:
        """The start of the console was dropped to keep the file within its bound."""
        return self.bytes_kept < self.bytes_received

    @property
    def problem(self) -> str | None:
        """What the console says went wrong with the crash (read it when the watch ends)."""
        if self.path is None:
            return None
        seen = {m.kind for m in self.milestones}
        if MilestoneKind.KDUMP_FAILED in seen:
            return "kdump: saving vmcore failed"
        if MilestoneKind.KDUMP_SAVED in seen:
            return None
        if MilestoneKind.CRASH_KERNEL in seen:
            if MilestoneKind.KDUMP_SAVING in seen:
                return "kdump started saving but did not say it finished"
            return "the crash kernel booted but kdump did not start saving"
        if MilestoneKind.PANIC in seen:
            return "the kernel panicked but the crash kernel did not boot"
        return "the console showed no panic"

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "path": str(self.path) if self.path else None,
            "bytes": self.bytes_received,
            "bytes_kept": self.bytes_kept,
            "truncated": self.truncated,
            "milestones": [m.to_dict() for m in self.milestones],
            "last_lines": list(self.last_lines),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "ended": self.ended,
            "problem": self.problem,
            "warning": self.warning,
        }


def console_supported(host: Host) -> bool:
    """Can oob read this host's console? (its BMC speaks IPMI, and a user is configured)"""
    return "ipmi" in host.bmc.effective_methods and bool(host.bmc.username)


def default_console_dir(environ: dict[str, str] | None = None) -> Path:
    """``consoles/`` beside the audit log (``$OOB_AUDIT_LOG``, else the XDG state directory)."""
    return (default_audit_path(environ) if environ is not None else default_audit_path()).parent / "consoles"


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def console_path(directory: Path, host: str, when: datetime, attempt: int = 1) -> Path:
    """``<directory>/<host>-<YYYYmmddTHHMMSSZ>[-N].console.log``; the host name made safe
    for a file name (no separators, no leading dot)."""
    safe = _UNSAFE_NAME.sub("_", host).lstrip(".")[:100] or "host"
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    suffix = f"-{attempt}" if attempt > 1 else ""
    return directory / f"{safe}-{stamp}{suffix}.console.log"


def create_console_file(directory: Path, host: str, when: datetime) -> tuple[Path, int]:
    """Create the console file (0600, never an existing one); returns its path and fd.

    Raises OobError (from the directory check, or when no name is free).
    """
    private_directory(directory, "console directory")
    for attempt in range(1, MAX_NAME_TRIES + 1):
        path = console_path(directory, host, when, attempt)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            continue
        except OSError as exc:
            raise OobError(f"cannot create the console file {path}: {exc.strerror or exc}") from None
        return path, fd
    raise OobError(
        f"{MAX_NAME_TRIES} console files for {host} at {when:%H:%M:%S} already exist in {directory}"
    )


class BoundedFile:
    """An open file that keeps at most ``limit`` bytes: the end of what was written."""

    def __init__(self, fd: int, limit: int) -> None:
        if limit < 2:
            raise ValueError("a console file needs room for at least 2 bytes")
        self._fd = fd
        self.limit = limit
        self.size = 0
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)
        if self.size + len(data) <= self.limit:
            os.pwrite(self._fd, data, self.size)
            self.size += len(data)
            return
        # keep the newest half of the limit (amortised: this happens once per limit/2 bytes)
        keep = self.limit // 2
        data = data[-keep:]
        old = max(0, min(self.size, keep - len(data)))
        tail = os.pread(self._fd, old, self.size - old) if old else b""
        content = tail + data
        os.pwrite(self._fd, content, 0)
        os.ftruncate(self._fd, len(content))
        self.size = len(content)

    def close(self) -> None:
        try:
            os.fsync(self._fd)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.EROFS):
                log.warning("console file: %s", exc.strerror or exc)
        finally:
            os.close(self._fd)


class LineWatcher:
    """Splits console bytes into lines: the last few kept, milestones recognised."""

    def __init__(self, keep: int, now: Callable[[], datetime]) -> None:
        self._now = now
        self._partial = bytearray()
        self.lines: collections.deque[str] = collections.deque(maxlen=keep)
        self.milestones: list[Milestone] = []
        self._seen: set[MilestoneKind] = set()

    def feed(self, data: bytes) -> list[Milestone]:
        found: list[Milestone] = []
        self._partial += data
        while True:
            end = self._partial.find(b"\n")
            if end < 0:
                if len(self._partial) <= MAX_LINE:
                    break
                end = MAX_LINE
                raw, self._partial = bytes(self._partial[:end]), self._partial[end:]
            else:
                raw, self._partial = bytes(self._partial[:end]), self._partial[end + 1 :]
            found += self._line(raw.rstrip(b"\r").decode("utf-8", "replace"))
        return found

    @property
    def partial(self) -> str:
        return printable(_ESCAPES.sub("", bytes(self._partial).decode("utf-8", "replace")).strip("\r"))

    def _line(self, text: str) -> list[Milestone]:
        plain = _ESCAPES.sub("", text)
        self.lines.append(printable(plain))
        found: list[Milestone] = []
        for kind, pattern in _PATTERNS:
            if kind in self._seen or not pattern.search(plain):
                continue
            if kind is MilestoneKind.REBOOTING and MilestoneKind.PANIC not in self._seen:
                continue  # an ordinary reboot before the crash says nothing about it
            found.append(self._record(kind, plain))
        if (
            MilestoneKind.PANIC in self._seen
            and MilestoneKind.CRASH_KERNEL not in self._seen
            and _LINUX_VERSION.search(plain)
        ):
            found.append(self._record(MilestoneKind.CRASH_KERNEL, plain))
        return found

    def _record(self, kind: MilestoneKind, plain: str) -> Milestone:
        milestone = Milestone(kind, self._now(), printable(plain.strip())[:500])
        self._seen.add(kind)
        self.milestones.append(milestone)
        return milestone


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ConsoleCapture:
    """One host's serial console, recorded to a file from :meth:`start` to :meth:`stop`.

    ``on_milestone(milestone)`` runs on the console's receiving thread as each milestone
    is recognised (emit an event from it; do not block).
    """

    host: Host
    password: str = field(repr=False)
    directory: Path = field(default_factory=default_console_dir)
    max_bytes: int = MAX_BYTES
    last_lines: int = LAST_LINES
    on_milestone: Callable[[Milestone], None] | None = None
    now: Callable[[], datetime] = _utc_now
    keepalive: float = 10.0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._console: SolConsole | None = None
        self._file: BoundedFile | None = None
        self._lines = LineWatcher(self.last_lines, self.now)
        self.path: Path | None = None
        self.warning: str | None = None
        self._started_at: datetime | None = None
        self._ended_at: datetime | None = None
        self._ended: str | None = None
        self._stopped = False

    def __repr__(self) -> str:
        return f"ConsoleCapture({self.host.name!r}, {self.path})"

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> bool:
        """Open the console and start recording; False (and :attr:`warning`) if it cannot.

        Never raises for the BMC or the file: a console that cannot be read must not stop
        the NMI.  The file is created only once the console is open.
        """
        if not console_supported(self.host):
            return self._give_up(
                "the BMC has no IPMI configured (bmc.methods, bmc.username): no serial console"
            )
        from oob.drivers.ipmi.console import SolConsole

        bmc = self.host.bmc
        console = SolConsole(
            bmc.hostname,
            bmc.ipmi_port,
            bmc.username or "",
            self.password,
            on_data=self._got_data,
            on_end=self._got_end,
            timeout=min(bmc.timeout, 10.0),
            keepalive=self.keepalive,
        )
        started = self.now()
        try:
            path, fd = create_console_file(self.directory, self.host.name, started)
        except OobError as exc:
            return self._give_up(f"serial console not recorded: {exc}")
        with self._lock:
            self.path, self._file, self._started_at = path, BoundedFile(fd, self.max_bytes), started
            self._console = console
        try:
            console.start()
        except OobError as exc:
            self._discard_file()
            return self._give_up(f"serial console not available: {exc}")
        except Exception as exc:  # noqa: BLE001 - a warning, never a reason not to send the NMI
            self._discard_file()
            return self._give_up(f"serial console not available: {type(exc).__name__}: {exc}")
        except BaseException:  # Ctrl-C while logging in: nothing is left behind
            self._discard_file()
            raise
        log.info("%s: recording the serial console to %s", self.host.name, path)
        return True

    def stop(self) -> ConsoleResult:
        """Stop recording; deactivates the console and closes the session.  Idempotent."""
        console = self._console
        if console is not None:
            console.stop()
        with self._lock:
            if not self._stopped:
                self._stopped = True
                if self._file is not None:
                    self._ended_at = self.now()
                    try:
                        self._file.close()
                    except OSError as exc:
                        self.warning = self.warning or printable(f"console file: {exc.strerror or exc}")
                    self._file = None
        return self.result()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- what was seen --------------------------------------------------------------------

    def result(self) -> ConsoleResult:
        """What has been recorded so far (the final one after :meth:`stop`)."""
        with self._lock:
            lines = list(self._lines.lines)
            partial = self._lines.partial
            if partial:
                lines.append(partial)
            file = self._file
            return ConsoleResult(
                host=self.host.name,
                path=self.path,
                bytes_received=file.written if file else self._written,
                bytes_kept=file.size if file else self._kept,
                last_lines=tuple(lines[-self.last_lines :]),
                milestones=tuple(self._lines.milestones),
                started_at=self._started_at,
                ended_at=self._ended_at,
                ended=self._ended,
                warning=self.warning,
            )

    def wait_for(self, kind: MilestoneKind, timeout: float) -> Milestone | None:
        """Block until ``kind`` was seen (it, at once if already) or ``timeout`` seconds pass."""
        with self._changed:
            self._changed.wait_for(
                lambda: any(m.kind is kind for m in self._lines.milestones) or self._ended is not None,
                timeout,
            )
            return next((m for m in self._lines.milestones if m.kind is kind), None)

    # -- the console's thread -------------------------------------------------------------

    _written = 0
    _kept = 0

    def _got_data(self, data: bytes) -> None:
        with self._lock:
            if self._file is None:
                return
            try:
                self._file.write(data)
                self._written, self._kept = self._file.written, self._file.size
            except OSError as exc:
                self.warning = self.warning or printable(f"console file: {exc.strerror or exc}")
            found = self._lines.feed(data)
            if found:
                self._changed.notify_all()
        for milestone in found:
            if self.on_milestone is not None:
                try:
                    self.on_milestone(milestone)
                except Exception:
                    log.exception("%s: console milestone callback failed", self.host.name)

    def _got_end(self, ended: Ended, detail: str) -> None:
        with self._lock:
            self._ended = str(ended)
            if str(ended) != "stopped" and not self._stopped:
                self.warning = self.warning or printable(f"the serial console ended early: {detail}")
            self._changed.notify_all()

    # -- failures -------------------------------------------------------------------------

    def _give_up(self, why: str) -> bool:
        with self._lock:
            self.warning = printable(why)
            self._stopped = True
        log.warning("%s: %s", self.host.name, self.warning)
        return False

    def _discard_file(self) -> None:
        with self._lock:
            file, path = self._file, self.path
            self._file, self.path, self._console, self._started_at = None, None, None, None
        if file is not None:
            file.close()
        if path is not None:
            try:
                path.unlink()
            except OSError:
                pass


# -- events -------------------------------------------------------------------------------


def recording_event(capture: ConsoleCapture) -> Event:
    """After a successful :meth:`ConsoleCapture.start`."""
    return Event(
        Level.INFO,
        f"recording the serial console to {capture.path}",
        host=capture.host.name,
        kind=EventKind.CONSOLE_RECORDING,
        data={"path": str(capture.path)},
    )


def unavailable_event(capture: ConsoleCapture) -> Event:
    """After :meth:`ConsoleCapture.start` returned False (the NMI goes ahead)."""
    return Event(
        Level.WARNING,
        capture.warning or "the serial console could not be opened",
        host=capture.host.name,
        kind=EventKind.CONSOLE_UNAVAILABLE,
    )


#: what each milestone means, for the operator
MILESTONE_TEXT: dict[MilestoneKind, str] = {
    MilestoneKind.PANIC: "the kernel panicked",
    MilestoneKind.CRASH_KERNEL: "the crash kernel is booting",
    MilestoneKind.KDUMP_SAVING: "kdump is saving the dump",
    MilestoneKind.KDUMP_SAVED: "kdump says the dump is saved",
    MilestoneKind.KDUMP_FAILED: "kdump says saving the dump failed",
    MilestoneKind.REBOOTING: "the host is rebooting",
}


def milestone_event(host: str, milestone: Milestone) -> Event:
    """For ``on_milestone``: the console showed a step of the crash."""
    return Event(
        Level.WARNING if milestone.kind is MilestoneKind.KDUMP_FAILED else Level.PROGRESS,
        f"console: {MILESTONE_TEXT[milestone.kind]}",
        host=host,
        kind=EventKind.CONSOLE_MILESTONE,
        data={"milestone": str(milestone.kind), "line": milestone.line, "at": milestone.at.isoformat()},
    )


def saved_event(result: ConsoleResult, *, show_lines: bool | None = None) -> Event:
    """After :meth:`ConsoleCapture.stop`.  The last lines go with it when ``show_lines``
    (default: when the console shows a problem or the dump did not complete — pass
    ``show_lines=True`` then)."""
    problem = result.problem
    show = bool(problem) if show_lines is None else show_lines
    size = f"{result.bytes_received} bytes" + (
        f", the last {result.bytes_kept} kept" if result.truncated else ""
    )
    message = f"serial console saved to {result.path} ({size})"
    if problem:
        message += f"; {problem}"
    data: dict[str, Any] = {
        "path": str(result.path) if result.path else None,
        "bytes": result.bytes_received,
        "bytes_kept": result.bytes_kept,
        "milestones": [m.to_dict() for m in result.milestones],
        "problem": problem,
        "ended": result.ended,
    }
    if show:
        data["last_lines"] = list(result.last_lines)
    return Event(
        Level.WARNING if problem else Level.INFO,
        message,
        host=result.host,
        kind=EventKind.CONSOLE_SAVED,
        data=data,
    )
