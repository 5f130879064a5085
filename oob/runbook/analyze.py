"""``oob analyze``: why a host hung, from a dump that already exists.

What can be named (each resolved in this order):

- ``ssh://[user@]server[:port]/path/to/dump-dir`` or ``file:///path/to/dump-dir``;
- a local path: a dump directory, a kernel log file (``vmcore-dmesg.txt``, ``dmesg.*``,
  a journal export) or a vmcore (its log extracted with ``makedumpfile --dump-dmesg``);
- a host name from the inventory: its newest dump on its dump target.

A dump directory's kernel log is read where it lies (its last 4 MiB at most). When kdump
saved none, the log is extracted from the vmcore with makedumpfile — only from a local
vmcore: a vmcore on a remote server is never copied.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import shutil
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from oob import asyncbridge
from oob.analysis import Analysis, analyze_bytes
from oob.analysis.crashtool import CrashRun, CrashRunStatus, run_crash
from oob.analysis.extract import extract_dmesg
from oob.analysis.handoff import CrashHandoff, build_handoff, handoff_for_dump
from oob.analysis.model import Confidence
from oob.dump.formats import VmcoreFormat, detect_format
from oob.dump.reading import DumpFiles, newest_dump, read_dump
from oob.dump.targets import DumpTarget, SshTarget, Targets, call_bounds, parse_target
from oob.errors import DumpTargetError, OobError, UsageError
from oob.events import Emit, Event, EventKind, Level, discard
from oob.model import Host
from oob.signals.bmclog import BmcLog
from oob.ssh import SshOptions

#: a local file analysed as a log is read to this size at most (from its end)
MAX_LOG_FILE = 16 * 1024 * 1024
#: deadline for one dump's reads on its target
READ_TIMEOUT = 60.0


class AnalyzeStatus(StrEnum):
    #: the kernel log was read and analysed (the verdict may still say "unsure")
    ANALYSED = "analysed"
    #: the dump holds no kernel log oob could read
    NO_LOG = "no_log"
    FAILED = "failed"


@dataclass(frozen=True)
class AnalyzeRequest:
    #: extract the log from a local vmcore with makedumpfile when kdump saved none
    extract: bool = True
    layout: str = "auto"
    ssh: SshOptions | None = None
    #: copy a remote vmcore into this directory (``--fetch``) when it is needed: no kernel
    #: log was saved beside it; None never copies one
    fetch_dir: Path | None = None
    #: the copy's deadline, seconds
    fetch_timeout: float = 1800.0
    #: ``--crash``: run crash in batch mode on a local (or fetched) vmcore
    run_crash: bool = False
    #: where crash's output is saved (default: the current directory)
    crash_dir: Path | None = None
    #: for an inventory host: read its BMC's event log around the dump (the NMI's entry,
    #: hardware errors the kernel log cannot show)
    bmc_log: bool = True


@dataclass(frozen=True)
class DumpAnalysis:
    """One named dump (or log) and what oob read from it."""

    subject: str
    status: AnalyzeStatus
    message: str
    host: str | None = None
    #: the dump directory or file, as an engineer would type it
    location: str | None = None
    #: kdump's own state of the directory (complete, writing, failed), when a directory
    dump_status: str | None = None
    vmcore: str | None = None
    format: VmcoreFormat | None = None
    analysis: Analysis | None = None
    #: where ``--fetch`` copied the vmcore to
    fetched: str | None = None
    #: what ``--crash`` gave
    crash_run: CrashRun | None = None
    #: the BMC's event log around the dump (inventory hosts only)
    bmc_log: BmcLog | None = None
    error: OobError | None = None

    @property
    def exit_code(self) -> int:
        if self.status is AnalyzeStatus.ANALYSED:
            return 0
        return self.error.exit_code if self.error is not None else DumpTargetError.exit_code

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "subject": self.subject,
            "host": self.host,
            "status": self.status.value,
            "exit_code": self.exit_code,
            "message": self.message,
            "location": self.location,
            "dump_status": self.dump_status,
            "vmcore": self.vmcore,
            "format": self.format.to_dict() if self.format else None,
            "analysis": self.analysis.to_dict() if self.analysis else None,
        }
        if self.fetched:
            data["fetched"] = self.fetched
        if self.crash_run is not None:
            data["crash_run"] = self.crash_run.to_dict()
        if self.bmc_log is not None:
            log = self.bmc_log.to_dict()
            log.pop("host", None)
            data["bmc_log"] = log
        if self.error is not None:
            data["error"] = self.error.kind
        return data


@dataclass(frozen=True)
class _Where:
    """A dump directory on a target, or a local file."""

    target_url: str | None = None
    directory: str | None = None
    file: Path | None = None
    host: Host | None = None


class InventoryHosts:
    """Host names resolved through the inventory (``-i`` paths, else ``$OOB_INVENTORY``),
    read only when a subject is neither a path nor a URL; no inventory at all is no host."""

    def __init__(self, paths: Sequence[Path] = ()) -> None:
        self.paths = list(paths)
        self._hosts: dict[str, Host] | None = None

    def _load(self) -> dict[str, Host]:
        if self._hosts is None:
            from oob.inventory import ENV_VAR, inventory_paths, load_inventory

            if not self.paths and not os.environ.get(ENV_VAR, "").strip():
                self._hosts = {}
            else:
                self._hosts = load_inventory(inventory_paths(self.paths, os.environ)).hosts
        return self._hosts

    def host(self, name: str) -> Host | None:
        return self._load().get(name)

    def sharing(self, host: Host) -> list[Host]:
        """The hosts that dump where ``host`` does."""
        return [h for h in self._load().values() if h.dump.target == host.dump.target]


def run_analyze(
    subjects: Sequence[str],
    request: AnalyzeRequest,
    *,
    hosts: Callable[[str], Host | None] = lambda name: None,
    sharing: Callable[[Host], Sequence[Host]] = lambda host: (),
    emit: Emit = discard,
) -> list[DumpAnalysis]:
    """Analyse each named dump; a failure on one is its own result, never the others'."""
    targets = Targets(request.ssh)
    results: list[DumpAnalysis] = []
    try:
        for subject in subjects:
            try:
                where = _resolve(subject, hosts)
                result = _analyse(subject, where, request, targets, sharing)
            except OobError as error:
                result = DumpAnalysis(subject, AnalyzeStatus.FAILED, error.message, error=error)
            results.append(result)
            emit(_event(result))
    finally:
        asyncbridge.run(targets.close(), timeout=10)
    return results


def _event(result: DumpAnalysis) -> Event:
    level = Level.INFO if result.status is AnalyzeStatus.ANALYSED else Level.ERROR
    verdict = result.analysis.verdict if result.analysis else None
    message = result.message
    if verdict is not None and verdict.kind is not None:
        message = f"{verdict.headline} ({verdict.confidence.value} confidence)"
    kind = EventKind.DUMP_ANALYSED if result.status is AnalyzeStatus.ANALYSED else EventKind.ANALYSIS_FAILED
    return Event(level, message, host=result.host or result.subject, kind=kind, data=result.to_dict())


def _resolve(subject: str, hosts: Callable[[str], Host | None]) -> _Where:
    if subject.startswith("file://"):
        # a file URL as a browser or Path.as_uri() writes it: percent-encoded
        local = unquote(subject.removeprefix("file://"))
        if not local.startswith("/"):
            raise UsageError(f"{subject}: a file:// URL needs an absolute path (file:///var/crash/...)")
        return _resolve(local, hosts)
    if subject.startswith("ssh://"):
        spec = parse_target(subject)
        parent, name = posixpath.split(spec.path.rstrip("/"))
        if not name:
            raise UsageError(f"{subject}: name a dump directory, not the root")
        return _Where(target_url=subject[: len(subject) - len(spec.path)] + (parent or "/"), directory=name)
    path = Path(subject).expanduser()
    if os.path.lexists(path):
        if path.is_symlink():
            raise UsageError(f"{subject}: a symbolic link; name the dump directory itself")
        if path.is_dir():
            absolute = path.resolve()
            return _Where(target_url=absolute.parent.as_uri(), directory=absolute.name)
        return _Where(file=path)
    host = hosts(subject)
    if host is not None:
        if not host.dump.target:
            raise UsageError(f"{subject}: no dump target in the inventory (dump.target)")
        return _Where(target_url=host.dump.target, host=host)
    raise UsageError(f"{subject}: no such file or directory, and no host of that name in the inventory")


def _analyse(
    subject: str,
    where: _Where,
    request: AnalyzeRequest,
    targets: Targets,
    sharing: Callable[[Host], Sequence[Host]],
) -> DumpAnalysis:
    if where.file is not None:
        return _analyse_file(subject, where.file, request)
    assert where.target_url is not None
    target = targets.get(where.target_url)
    layout = where.host.dump.layout if where.host else request.layout
    files = asyncbridge.run(_read(target, where, sharing, layout), timeout=READ_TIMEOUT)
    common: dict[str, Any] = {
        "host": where.host.name if where.host else None,
        "location": files.location,
        "dump_status": files.status,
        "vmcore": f"{files.location}/{files.vmcore}" if files.vmcore else None,
        "format": files.format,
    }
    local: Path | None = None
    if files.vmcore and target.spec.scheme == "file":
        local = Path(target.spec.path_of(files.directory, files.vmcore))
    elif (
        files.vmcore
        and isinstance(target, SshTarget)
        and request.fetch_dir is not None
        and ((files.log is None and request.extract) or request.run_crash)
    ):
        local = fetch_vmcore(target, files, request.fetch_dir, request.fetch_timeout)
        common["fetched"] = str(local)

    if files.log is not None:
        analysis = analyze_bytes(files.log, source=f"{files.location}/{files.dmesg}", cut=files.log_cut)
    elif local is not None and request.extract:
        extracted = _extract(subject, local, common)
        if isinstance(extracted, DumpAnalysis):
            return extracted
        analysis = extracted
    else:
        why = "kdump saved no kernel log beside the vmcore"
        if files.vmcore and target.spec.scheme != "file":
            why += "; the vmcore is on a remote server and is not copied without --fetch"
        elif not files.vmcore:
            why = f"no kernel log and no vmcore ({files.reason})"
        elif not request.extract:
            why += " (--no-extract: not read from the vmcore)"
        error = DumpTargetError(f"{files.location}: {why}")
        return DumpAnalysis(subject, AnalyzeStatus.NO_LOG, why, error=error, **common)

    if local is not None:
        handoff = build_handoff(local, release=analysis.facts.release)
    elif files.vmcore:
        spec = target.spec
        handoff = handoff_for_dump(
            spec.path_of(files.directory, files.vmcore),
            server=f"{spec.user}@{spec.server_address}",
            head=files.head,
            release=analysis.facts.release,
        )
    else:
        handoff = build_handoff(release=analysis.facts.release)
    analysis = replace(analysis, handoff=handoff)
    run = _run_crash(request, local, handoff, where.host.name if where.host else files.directory)
    log = _bmc_log(where.host, files, request) if where.host is not None else None
    return _done(subject, analysis, {**common, "crash_run": run, "bmc_log": log})


def _bmc_log(host: Host, files: DumpFiles, request: AnalyzeRequest) -> BmcLog | None:
    """The host's BMC event log from an hour before the dump was written to 10 minutes after;
    not readable is no log, never a failure of the analysis."""
    if not request.bmc_log or files.written_at is None:
        return None
    from datetime import UTC, datetime, timedelta

    from oob.runbook.bmclog import read_log
    from oob.runbook.methods import DriverOptions
    from oob.signals.bmclog import Window

    written = datetime.fromtimestamp(files.written_at, UTC)
    try:
        return read_log(
            host, Window(written - timedelta(hours=1), written + timedelta(minutes=10)), DriverOptions()
        ).log
    except OobError:
        return None


def _run_crash(
    request: AnalyzeRequest, vmcore: Path | None, handoff: CrashHandoff, name: str
) -> CrashRun | None:
    """``--crash``: crash in batch mode on a local vmcore, its output saved in ``crash_dir``."""
    if not request.run_crash:
        return None
    if vmcore is None:
        return CrashRun(
            CrashRunStatus.NOT_RUN,
            "not run: the vmcore is on a dump server (add --fetch to copy it here)",
            handoff.crash_command or "",
        )
    if handoff.prepare:
        steps = "; ".join(handoff.prepare)
        return CrashRun(CrashRunStatus.NOT_RUN, f"not run: crash cannot read it as it is; first: {steps}", "")
    vmlinux = Path(handoff.vmlinux_present) if handoff.vmlinux_present else None
    hint = handoff.debuginfo.install if handoff.debuginfo else None
    folder = request.crash_dir or Path(".")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return run_crash(vmcore, vmlinux, folder / f"{_safe_name(name)}.crash.txt", vmlinux_hint=hint)


def _safe_name(name: str) -> str:
    """A file name from a host or directory name (which a crashed host chose)."""
    cleaned = "".join(c if c.isalnum() or c in "-_.:" else "_" for c in name).lstrip(".")
    return cleaned[:100] or "dump"


async def _read(
    target: DumpTarget, where: _Where, sharing: Callable[[Host], Sequence[Host]], layout: str
) -> DumpFiles:
    directory = where.directory
    if directory is None:
        assert where.host is not None
        newest = await newest_dump(target, where.host, sharing(where.host))
        if newest is None:
            raise DumpTargetError(f"{where.host.name}: no dump of this host on {target.spec.location()}")
        directory = newest.name
    return await read_dump(target, directory, layout)


def _analyse_file(subject: str, path: Path, request: AnalyzeRequest) -> DumpAnalysis:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        raise UsageError(f"{subject}: cannot open: {error.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"{subject}: not a regular file")
        head = handle.read(64 * 1024)
        fmt = detect_format(head)
        if fmt.kind not in ("unknown", "empty"):
            common: dict[str, Any] = {"location": str(path), "vmcore": str(path), "format": fmt}
            if not request.extract:
                why = f"{subject}: a vmcore ({fmt.label}); extracting its log was turned off (--no-extract)"
                return DumpAnalysis(subject, AnalyzeStatus.NO_LOG, why, error=DumpTargetError(why), **common)
            extracted = _extract(subject, path, common)
            if isinstance(extracted, DumpAnalysis):
                return extracted
            handoff = build_handoff(path, release=extracted.facts.release)
            run = _run_crash(request, path, handoff, path.parent.name or path.name)
            return _done(subject, replace(extracted, handoff=handoff), {**common, "crash_run": run})
        cut = info.st_size > MAX_LOG_FILE
        handle.seek(max(0, info.st_size - MAX_LOG_FILE))
        data = handle.read(MAX_LOG_FILE)
    analysis = analyze_bytes(data, source=str(path), cut=cut)
    # a log alone: crash needs the dump, but the vmlinux to get is known from the release
    analysis = replace(analysis, handoff=build_handoff(release=analysis.facts.release))
    return _done(subject, analysis, {"location": str(path)})


def _extract(subject: str, vmcore: Path, common: dict[str, Any]) -> Analysis | DumpAnalysis:
    """The analysis of the log makedumpfile reads from ``vmcore``, or why there is none."""
    try:
        extracted = extract_dmesg(vmcore)
    except OobError as error:
        return DumpAnalysis(subject, AnalyzeStatus.NO_LOG, error.message, error=error, **common)
    return analyze_bytes(extracted.text.encode(), source=extracted.source, cut=extracted.truncated)


def _done(subject: str, analysis: Analysis, common: dict[str, Any]) -> DumpAnalysis:
    verdict = analysis.verdict
    if verdict.confidence is Confidence.NONE and verdict.kind is None:
        message = verdict.headline
    else:
        message = f"{verdict.headline} ({verdict.confidence.value} confidence)"
    return DumpAnalysis(subject, AnalyzeStatus.ANALYSED, message, analysis=analysis, **common)


#: room left free beside a fetched vmcore
FETCH_MARGIN = 64 * 1024 * 1024


def fetch_vmcore(target: SshTarget, files: DumpFiles, into: Path, timeout: float) -> Path:
    """Copy a dump's vmcore from its server into ``into/<dump directory>/`` (``--fetch``).

    A copy already there with the same size is used as it is; one of another size is never
    overwritten. The copy goes to ``<name>.part`` first and is renamed once whole, after a
    check of the free space; the deadline holds for the whole copy."""
    assert files.vmcore is not None
    folder = into / files.directory
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    final = folder / files.vmcore
    if os.path.lexists(final):
        if final.is_file() and not final.is_symlink() and final.stat().st_size == files.vmcore_size:
            return final
        raise DumpTargetError(f"{final}: already there (another size, or not a file); not overwritten")
    free = shutil.disk_usage(folder).free
    if files.vmcore_size + FETCH_MARGIN > free:
        raise DumpTargetError(
            f"{final}: not copied: the vmcore is {files.vmcore_size} bytes and {folder} has {free} bytes free"
        )
    part = final.with_name(final.name + ".part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)

    async def copy() -> int:
        with call_bounds(op_timeout=timeout):
            return await target.copy_file(
                files.directory, files.vmcore or "", write=out.write, limit=files.vmcore_size
            )

    try:
        with os.fdopen(fd, "wb") as out:
            copied = asyncbridge.run(copy(), timeout=timeout + 5)
            out.flush()
            os.fsync(out.fileno())
        if copied != files.vmcore_size:
            raise DumpTargetError(
                f"{files.location}/{files.vmcore}: {copied} of {files.vmcore_size} bytes copied (it changed?)"
            )
        os.rename(part, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(part)
        raise
    return final


def last_dump_times(hosts: Sequence[Host], ssh: SshOptions | None = None) -> dict[str, float | None]:
    """When each host's newest dump on its target was written (the server's time; None: no
    dump, no target, or the target could not be read — one host's problem is its own)."""
    targets = Targets(ssh)

    async def one(host: Host) -> float | None:
        if not host.dump.target:
            return None
        sharing = [h for h in hosts if h.dump.target == host.dump.target]
        try:
            newest = await newest_dump(targets.get(host.dump.target), host, sharing)
        except OobError:
            return None
        return newest.mtime if newest is not None else None

    async def every() -> list[float | None]:
        return list(await asyncio.gather(*(one(host) for host in hosts)))

    try:
        times = asyncbridge.run(every(), timeout=READ_TIMEOUT)
    finally:
        asyncbridge.run(targets.close(), timeout=10)
    return {host.name: when for host, when in zip(hosts, times, strict=True)}
