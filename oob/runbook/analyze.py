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

import os
import posixpath
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from oob import asyncbridge
from oob.analysis import Analysis, analyze_bytes
from oob.analysis.model import Confidence
from oob.dump.formats import VmcoreFormat, detect_format
from oob.dump.reading import DumpFiles, newest_dump, read_dump
from oob.dump.targets import DumpTarget, Targets, parse_target
from oob.errors import DumpTargetError, OobError, UsageError
from oob.events import Emit, Event, EventKind, Level, discard
from oob.model import Host
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
    host = where.host.name if where.host else None
    vmcore_location = f"{files.location}/{files.vmcore}" if files.vmcore else None
    common: dict[str, Any] = {
        "host": host,
        "location": files.location,
        "dump_status": files.status,
        "vmcore": vmcore_location,
        "format": files.format,
    }
    if files.log is not None:
        analysis = analyze_bytes(files.log, source=f"{files.location}/{files.dmesg}", cut=files.log_cut)
        return _done(subject, analysis, common)
    # no log saved beside the vmcore: only a local vmcore is read for it
    if files.vmcore and target.spec.scheme == "file" and request.extract:
        return _extract(subject, Path(target.spec.path_of(files.directory, files.vmcore)), common)
    why = "kdump saved no kernel log beside the vmcore"
    if files.vmcore and target.spec.scheme != "file":
        why += "; the vmcore is on a remote server and is not copied: copy it here and run 'oob analyze' on the copy"
    elif not files.vmcore:
        why = f"no kernel log and no vmcore ({files.reason})"
    error = DumpTargetError(f"{files.location}: {why}")
    return DumpAnalysis(subject, AnalyzeStatus.NO_LOG, why, error=error, **common)


async def _read(
    target: DumpTarget, where: _Where, sharing: Callable[[Host], Sequence[Host]], layout: str
) -> DumpFiles:
    directory = where.directory
    if directory is None:
        assert where.host is not None
        directory = await newest_dump(target, where.host, sharing(where.host))
        if directory is None:
            raise DumpTargetError(f"{where.host.name}: no dump of this host on {target.spec.location()}")
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
            return _extract(subject, path, common)
        cut = info.st_size > MAX_LOG_FILE
        handle.seek(max(0, info.st_size - MAX_LOG_FILE))
        data = handle.read(MAX_LOG_FILE)
    return _done(subject, analyze_bytes(data, source=str(path), cut=cut), {"location": str(path)})


def _extract(subject: str, vmcore: Path, common: dict[str, Any]) -> DumpAnalysis:
    from oob.analysis.extract import extract_dmesg

    try:
        extracted = extract_dmesg(vmcore)
    except OobError as error:
        return DumpAnalysis(subject, AnalyzeStatus.NO_LOG, error.message, error=error, **common)
    analysis = analyze_bytes(extracted.text.encode(), source=extracted.source, cut=extracted.truncated)
    return _done(subject, analysis, common)


def _done(subject: str, analysis: Analysis, common: dict[str, Any]) -> DumpAnalysis:
    verdict = analysis.verdict
    if verdict.confidence is Confidence.NONE and verdict.kind is None:
        message = verdict.headline
    else:
        message = f"{verdict.headline} ({verdict.confidence.value} confidence)"
    return DumpAnalysis(subject, AnalyzeStatus.ANALYSED, message, analysis=analysis, **common)
