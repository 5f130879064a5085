"""Reading one finished dump directory on a target: which files it holds, its kernel log,
and the first bytes of its vmcore — for ``oob analyze``, after the fact.

Everything goes through :class:`~oob.dump.targets.DumpTarget`, so the same bounds hold as
for the watcher: listings capped, no symbolic link followed, regular files only, at most
:data:`~oob.dump.targets.MAX_READ` bytes of the log (its end: the crash is at the end).
The vmcore itself is never copied here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from oob.dump.formats import VmcoreFormat, detect_format
from oob.dump.layouts import (
    ALL_FAMILIES,
    DirName,
    FileInfo,
    assess,
    families_for,
    parse_dir_name,
    texts_needed,
)
from oob.dump.matching import HostMatcher
from oob.dump.targets import MAX_READ, DumpTarget
from oob.errors import DumpTargetError
from oob.model import Host

#: bytes read from the start of a vmcore: its headers, and an ELF dump's VMCOREINFO note
VMCORE_HEAD = 64 * 1024
#: a small text file read whole (SUSE's README.txt)
TEXT_LIMIT = 64 * 1024


@dataclass(frozen=True)
class DumpFiles:
    """One dump directory as read: where it is, what kdump left, the log's bytes."""

    #: the directory as an engineer would type it (``kdump@dumps:/var/crash/...``)
    location: str
    directory: str
    #: "writing", "complete" or "failed", by the distribution's rule; family (rhel, ...)
    status: str
    family: str
    reason: str
    vmcore: str | None = None
    vmcore_size: int = 0
    format: VmcoreFormat | None = None
    #: the first bytes of the vmcore (kernel release, format)
    head: bytes = b""
    dmesg: str | None = None
    #: the kernel log's last MAX_READ bytes, and whether the file was longer
    log: bytes | None = None
    log_cut: bool = False
    #: the newest file's modification time (the server's clock): about when kdump finished
    written_at: float | None = None


async def read_dump(target: DumpTarget, directory: str, layout: str = "auto") -> DumpFiles:
    """The files of one dump directory under ``target`` and its kernel log."""
    families = families_for(layout) if layout != "auto" else ALL_FAMILIES
    listing = await target.listdir(directory)
    if listing is None:
        raise DumpTargetError(f"{target.spec.location(directory)}: no such dump directory")
    files = {entry.name: entry for entry in listing}
    parsed = parse_dir_name(directory, families)
    # a directory copied or renamed by hand: each family's rule is tried, and the one that
    # finds the most (a log, then a vmcore) is taken
    candidates = (
        [parsed]
        if parsed is not None
        else [DirName(directory, (family,), None, "renamed", None) for family in families]
    )
    verdicts = []
    for dirname in candidates:
        texts: dict[str, str] = {}
        for name in texts_needed(dirname, files):
            data = await target.read_head(directory, name, size=TEXT_LIMIT)
            texts[name] = data.decode("utf-8", "replace")
        verdicts.append(assess(dirname, files, texts))
    verdict = max(verdicts, key=lambda v: (v.dmesg in files, v.vmcore_name in files))
    vmcore = verdict.vmcore_name if verdict.vmcore_name in files else None
    head = b""
    fmt = None
    if vmcore is not None and files[vmcore].is_regular:
        head = await target.read_head(directory, vmcore, size=VMCORE_HEAD)
        fmt = detect_format(head)
    log = None
    cut = False
    dmesg = verdict.dmesg if verdict.dmesg in files else None
    if dmesg is not None:
        log = await target.read_tail(directory, dmesg, size=MAX_READ)
        cut = files[dmesg].size > len(log)
    return DumpFiles(
        location=target.spec.location(directory),
        directory=directory,
        status=verdict.status,
        family=verdict.family.value,
        reason=verdict.reason,
        vmcore=vmcore,
        vmcore_size=files[vmcore].size if vmcore else 0,
        format=fmt,
        head=head,
        dmesg=dmesg,
        log=log,
        log_cut=cut,
        written_at=max((entry.mtime for entry in files.values() if entry.mtime), default=None),
    )


async def newest_dump(target: DumpTarget, host: Host, sharing: Sequence[Host] = ()) -> FileInfo | None:
    """The newest dump directory ``host`` wrote on ``target`` (by the server's time, then name).

    ``sharing`` are the other hosts that dump there: a directory whose name says nothing of
    its host (``127.0.0.1-...``) counts only when no other host shares the target.
    """
    listing = await target.listdir()
    if listing is None:
        raise DumpTargetError(f"{target.spec.location()}: no such directory")
    families = families_for(host.dump.layout)
    matcher = HostMatcher([host, *(h for h in sharing if h.name != host.name)])
    mine: list[FileInfo] = []
    for entry in listing:
        if not entry.is_dir:
            continue
        dirname = parse_dir_name(entry.name, families)
        if dirname is not None and matcher.attribute(dirname).host == host.name:
            mine.append(entry)
    if not mine:
        return None
    return max(mine, key=lambda e: (e.mtime, e.name))
