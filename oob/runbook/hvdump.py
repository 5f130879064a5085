"""``oob dump``: a virtual machine's memory written by its hypervisor, for guests whose own
kdump cannot (not configured, or the guest too far gone to start it).

Per host, one at a time (a dump is heavy I/O for the hypervisor): lock the host →
look at the guest (running, its memory size) → plan the file (a fresh directory named
like kdump's, ``<dir>/<host>-<YYYY-MM-DD-HH:MM:SS>/vmcore`` in UTC, on this machine; on a
remote hypervisor the file ``<dir>/<host>-<YYYY-MM-DD-HH:MM:SS>.vmcore`` in an existing
directory there, since libvirt makes no directories) → check the free space against the
guest's memory (here only: libvirt cannot say how much space the hypervisor's machine
has) → the caller confirms → ``dump.sending`` in the audit log → the dump, with progress →
``dump.written`` (or ``dump.failed``) → the hand-off to ``crash``.

Nothing is ever written over: the local directory is new (``mkdir`` fails if it exists),
and a remote file name carries the second it was asked for.  The hypervisor writes the
file, not oob: run as root, oob gives the new directory the owner and group of ``--dir``
(a daemon of another user that may write there may then write in it).  A dump is no crash: the
repeat guard does not count it, and it may be repeated; the host lock keeps two runs from
dumping one guest at once.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from oob.audit import AuditLog
from oob.drivers.factory import make_driver
from oob.drivers.libvirt.driver import LibvirtDriver
from oob.errors import OobError, SafetyRefusal, UsageError
from oob.events import Emit, Event, EventKind, Level
from oob.model import Host
from oob.runbook.common import Outcome, Status, internal_error
from oob.runbook.guard import lock_host, record_quietly
from oob.safetext import printable

#: kdump's directory name: ``<host>-<date>-<time>`` (RHEL's kdump: ``<address>-%Y-%m-%d-%H:%M:%S``)
STAMP = "%Y-%m-%d-%H:%M:%S"
DEFAULT_DIR = "/var/crash"
#: seconds between two progress events of one dump
PROGRESS_EVERY_S = 5.0


@dataclass(frozen=True)
class DumpRequest:
    #: where the dump goes: on this machine for a local URI, on the hypervisor's for a remote one
    directory: str = DEFAULT_DIR
    #: keep the guest running during the dump (VIR_DUMP_LIVE): consistent only as of each page
    live: bool = False
    #: after a paused dump: "resume" (the default), "reset", or "off" (left crashed)
    after: str = "resume"
    #: "auto" (kdump-zlib, then ELF, then the hypervisor's own), or one of them
    fmt: str = "auto"
    assume_yes: bool = False
    deadline_s: float = 3600.0
    #: how often the job's progress is read
    poll_s: float = 1.0

    def __post_init__(self) -> None:
        from oob.drivers.libvirt.memdump import check_choices

        check_choices(self.fmt, self.live, self.after)
        if not self.directory.startswith("/"):
            raise UsageError(f"--dir must be an absolute path, not '{printable(self.directory)}'")


@dataclass(frozen=True)
class DumpPlan:
    host: Host
    #: the dump file, on the hypervisor's machine
    path: str
    #: None: this machine; else the hypervisor's ``[user@]host``
    remote: str | None
    memory: int
    #: free bytes where the dump goes (None: not known, a remote hypervisor)
    free: int | None

    @property
    def where(self) -> str:
        return "here" if self.remote is None else f"on {self.remote}"

    def describe(self, request: DumpRequest) -> str:
        how = (
            "kept running (--live)" if request.live else f"paused for the dump, then {_AFTER[request.after]}"
        )
        return (
            f"{self.host.name:<20} guest {self.host.bmc.domain} on {self.host.bmc.address}, "
            f"{_size(self.memory)}: {how}; file {self.path} ({self.where})"
        )


_AFTER = {"resume": "resumed", "reset": "reset", "off": "left stopped (crashed)"}

ConfirmDump = Callable[[list[DumpPlan]], bool]


def _size(count: int) -> str:
    if count >= 2**30:
        return f"{count / 2**30:.1f} GiB"
    return f"{count / 2**20:.0f} MiB" if count >= 2**20 else f"{count} bytes"


def dump_path(host: Host, directory: str, remote: bool, now: datetime) -> str:
    stamp = now.strftime(STAMP)
    base = directory.rstrip("/") or "/"
    name = f"{host.name}-{stamp}"
    return f"{base}/{name}.vmcore" if remote else f"{base}/{name}/vmcore"


def _driver(host: Host) -> LibvirtDriver:
    driver = make_driver(host, "libvirt")
    if not isinstance(driver, LibvirtDriver):  # a test's use_drivers() may hand in anything
        raise UsageError(f"oob dump needs a libvirt driver, got {type(driver).__name__}", host=host.name)
    return driver


def plan_dump(host: Host, request: DumpRequest, now: datetime) -> DumpPlan:
    if host.bmc.kind != "libvirt":
        raise UsageError(
            f"oob dump asks a hypervisor for a guest's memory: host '{host.name}' has bmc.kind "
            f"'{host.bmc.kind}', not 'libvirt'",
            host=host.name,
        )
    with _driver(host) as driver:
        if not driver.is_active():
            raise SafetyRefusal("the guest is not running: it has no memory to dump", host=host.name)
        memory = driver.memory_bytes()
        remote = driver.hypervisor_host
    path = dump_path(host, request.directory, remote is not None, now)
    free = None
    if remote is None:
        try:
            free = shutil.disk_usage(request.directory).free
        except FileNotFoundError:
            raise UsageError(f"--dir {printable(request.directory)} does not exist", host=host.name) from None
        except OSError as exc:
            raise UsageError(
                f"cannot read the free space of {printable(request.directory)}: {exc.strerror}",
                host=host.name,
            ) from None
        if free < memory:
            raise SafetyRefusal(
                f"not enough space in {printable(request.directory)}: {_size(free)} free, the guest has "
                f"{_size(memory)} of memory (a memory-only dump is at most that); nothing was written",
                host=host.name,
            )
    return DumpPlan(host, path, remote, memory, free)


def make_dump_dir(directory: str, host_name: str) -> None:
    """The new dump directory, never an existing one.  Run as root, oob gives it the owner
    and group of ``--dir``: the hypervisor writes the file, not oob, and a libvirt daemon
    that runs as another user (a session daemon, QEMU's own user) may write in ``--dir``
    but not in a directory of root's (mode 0750)."""
    parent, name = os.path.split(directory)
    try:
        parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise UsageError(f"cannot open {printable(parent)}: {exc.strerror}", host=host_name) from None
    try:
        try:
            os.mkdir(name, 0o750, dir_fd=parent_fd)
        except FileExistsError:
            raise SafetyRefusal(
                f"{printable(directory)} exists already: oob never writes over a dump", host=host_name
            ) from None
        except OSError as exc:
            raise UsageError(f"cannot make {printable(directory)}: {exc.strerror}", host=host_name) from None
        if os.geteuid() == 0:  # only root gives a directory away
            _give_to_parents_owner(parent_fd, name, directory, host_name)
    finally:
        os.close(parent_fd)


def _give_to_parents_owner(parent_fd: int, name: str, directory: str, host_name: str) -> None:
    """By descriptor, checked to be the directory root just made: whoever may write in the
    parent could have put a link or a directory of theirs in its place meanwhile."""
    replaced = SafetyRefusal(
        f"{printable(directory)} was replaced while oob made it; nothing was written", host=host_name
    )
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
    except OSError:
        raise replaced from None
    try:
        if os.fstat(fd).st_uid != 0:
            raise replaced
        owner = os.fstat(parent_fd)
        os.fchown(fd, owner.st_uid, owner.st_gid)
    except OSError as exc:
        raise UsageError(
            f"cannot give {printable(directory)} to its parent's owner: {exc.strerror}", host=host_name
        ) from None
    finally:
        os.close(fd)


def write_dump(
    plan: DumpPlan,
    request: DumpRequest,
    emit: Emit,
    audit: AuditLog | None,
    cancel: threading.Event | None = None,
) -> Outcome:
    """The dump itself; the caller holds the host's lock and has the confirmation."""
    host = plan.host
    base = {"bmc": host.bmc.address, "machine": host.bmc.machine, "via": "libvirt", "path": plan.path}
    warnings: tuple[str, ...] = ()
    if plan.remote is None:
        make_dump_dir(os.path.dirname(plan.path), host.name)
    if plan.remote is not None:
        emit(
            Event(
                Level.WARNING,
                f"the dump is written on {plan.remote}, not here; its free space there was not checked "
                f"(libvirt cannot tell; the guest has {_size(plan.memory)})",
                host.name,
                EventKind.WARNING,
            )
        )
    if audit:  # AuditLogError: refuse, nothing dumped (the empty directory stays, said by the error)
        audit.record("dump.sending", host.name, live=request.live, after=request.after, **base)
    emit(
        Event(
            Level.PROGRESS,
            f"the hypervisor is writing the guest's memory ({_size(plan.memory)}) to {plan.path} ({plan.where})"
            + ("" if request.live else "; the guest is paused meanwhile"),
            host.name,
            EventKind.VM_DUMP_STARTED,
            {
                "path": plan.path,
                "where": plan.remote or "local",
                "live": request.live,
                "after": request.after,
            },
        )
    )

    last: list[float] = []

    def progress(step: Any) -> None:
        # one line every PROGRESS_EVERY_S at most: a dump of a large guest takes minutes
        if last and step.elapsed_s - last[0] < PROGRESS_EVERY_S:
            return
        last[:] = [step.elapsed_s]
        said = f"{step.percent:.0f}%" if step.percent is not None else "running"
        emit(
            Event(
                Level.PROGRESS,
                f"dump {said} after {step.elapsed_s:.0f} s",
                host.name,
                EventKind.VM_DUMP_PROGRESS,
                {
                    "elapsed_s": round(step.elapsed_s, 1),
                    "processed": step.processed,
                    "total": step.total,
                    "percent": step.percent,
                },
            )
        )

    try:
        with _driver(host) as driver:
            written = driver.dump_memory(
                plan.path,
                live=request.live,
                after=request.after,
                fmt=request.fmt,
                progress=progress,
                deadline_s=request.deadline_s,
                poll_s=request.poll_s,
                cancel=cancel,
            )
    except OobError as exc:
        exc.for_host(host.name)
        _remove_if_empty(plan)
        warnings += record_quietly(
            audit, "dump.failed", host.name, error=exc.kind, message=exc.message, **base
        )
        emit(
            Event(
                Level.ERROR,
                f"dump failed: {exc.message}",
                host.name,
                EventKind.VM_DUMP_FAILED,
                {"error": exc.kind},
            )
        )
        return Outcome.from_error(host.name, "dump", exc, via="libvirt", warnings=warnings)
    size = _local_size(plan)
    warnings += record_quietly(audit, "dump.written", host.name, format=written.format, bytes=size, **base)
    for warning in warnings:
        emit(Event(Level.WARNING, warning, host.name, EventKind.AUDIT_RECORD_MISSING))
    for skipped in written.skipped:
        emit(Event(Level.INFO, f"format not taken: {skipped}", host.name, EventKind.WARNING))
    handoff = _handoff(plan)
    detail: dict[str, Any] = {
        "path": plan.path,
        "where": plan.remote or "local",
        "format": written.format,
        "bytes": size,
        "live": request.live,
        "after": request.after,
        "skipped_formats": list(written.skipped),
        "handoff": handoff.to_dict(),
    }
    emit(
        Event(
            Level.INFO,
            f"dump written: {plan.path} ({plan.where}, {written.format}"
            + (f", {_size(size)}" if size is not None else "")
            + ")",
            host.name,
            EventKind.VM_DUMP_WRITTEN,
            {k: detail[k] for k in ("path", "where", "format", "bytes", "skipped_formats")},
        )
    )
    return Outcome(host.name, "dump", Status.OK, via="libvirt", warnings=warnings, detail=detail)


def _remove_if_empty(plan: DumpPlan) -> None:
    """A dump that was never written leaves no empty directory behind (one with anything in
    it stays: it is evidence)."""
    if plan.remote is None:
        try:
            os.rmdir(os.path.dirname(plan.path))
        except OSError:
            pass


def _local_size(plan: DumpPlan) -> int | None:
    if plan.remote is not None:
        return None
    try:
        return os.lstat(plan.path).st_size
    except OSError:
        return None


def _handoff(plan: DumpPlan) -> Any:
    from oob.analysis.handoff import build_handoff, handoff_for_dump
    from oob.dump.formats import VmcoreFormat

    if plan.remote is not None:
        return handoff_for_dump(plan.path, server=plan.remote, fmt=VmcoreFormat("unknown"))
    try:
        return build_handoff(Path(plan.path))
    except OobError as exc:  # the dump is written; only the hand-off could not read it
        found = handoff_for_dump(plan.path, server=None, fmt=VmcoreFormat("unknown"))
        return replace(found, notes=(f"could not read the dump: {exc.message}", *found.notes))


def run_dump(
    hosts: Sequence[Host],
    request: DumpRequest,
    *,
    confirm: ConfirmDump,
    emit: Emit,
    audit: AuditLog | None,
    cancel: threading.Event | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[Outcome]:
    """Plan every host, ask once, then dump them one after the other, each under its lock."""
    cancel = cancel or threading.Event()
    outcomes: dict[str, Outcome] = {}
    with ExitStack() as locks:
        plans: list[DumpPlan] = []
        for host in hosts:
            refused = lock_host(locks, audit, host) if audit is not None else None
            if refused is not None:
                outcomes[host.name] = Outcome.from_error(host.name, "dump", refused)
                continue
            try:
                plans.append(plan_dump(host, request, now()))
            except OobError as exc:
                outcomes[host.name] = Outcome.from_error(host.name, "dump", exc.for_host(host.name))
            except Exception as exc:  # noqa: BLE001 - one host's bug is that host's result
                outcomes[host.name] = Outcome.from_error(host.name, "dump", internal_error(host, exc))
        if plans and (cancel.is_set() or (not request.assume_yes and not confirm(plans))):
            why = "interrupted before the dump" if cancel.is_set() else "not confirmed"
            for plan in plans:
                refusal = SafetyRefusal(f"{why}; nothing was written", host=plan.host.name)
                outcomes[plan.host.name] = Outcome.from_error(plan.host.name, "dump", refusal, via="libvirt")
            plans = []
        for plan in plans:
            if cancel.is_set():
                refusal = SafetyRefusal(
                    "interrupted before the dump; nothing was written", host=plan.host.name
                )
                outcomes[plan.host.name] = Outcome.from_error(plan.host.name, "dump", refusal, via="libvirt")
                continue
            try:
                outcomes[plan.host.name] = write_dump(plan, request, emit, audit, cancel)
            except OobError as exc:
                outcomes[plan.host.name] = Outcome.from_error(
                    plan.host.name, "dump", exc.for_host(plan.host.name)
                )
            except Exception as exc:  # noqa: BLE001
                outcomes[plan.host.name] = Outcome.from_error(
                    plan.host.name, "dump", internal_error(plan.host, exc)
                )
    return [outcomes[h.name] for h in hosts]
