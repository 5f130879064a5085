"""The hand-off to ``crash``: which kernel the dump is of, where its debug vmlinux comes
from, and the exact command line.

Every path and package name here was checked against the distributions' own file lists
and documentation; docs/ANALYSIS-HANDOFF.md says where each came from.  In short:

==============  =====================================  ==============================================
family          package (install)                      vmlinux crash gets
==============  =====================================  ==============================================
debian          ``linux-image-<rel>-dbg``              ``/usr/lib/debug/boot/vmlinux-<rel>``
ubuntu          ``linux-image[-unsigned]-<rel>-dbgsym``  ``/usr/lib/debug/boot/vmlinux-<rel>`` (ddebs)
rhel, fedora    ``kernel-debuginfo-<rel>``             ``/usr/lib/debug/lib/modules/<rel>/vmlinux``
oracle-uek      ``kernel-uek-debuginfo-<rel>``         ``/usr/lib/debug/lib/modules/<rel>/vmlinux``
suse            ``kernel-<flavor>-debuginfo``          ``/boot/vmlinux-<rel>.gz`` (its debug info:
                                                       ``/usr/lib/debug/boot/vmlinux-<rel>.debug``)
==============  =====================================  ==============================================

Dumps crash cannot take as they are get a ``prepare`` step first: a flattened stream is
rebuilt with ``makedumpfile -R``; a gzip/xz/bzip2/lz4-wrapped dump is unpacked.  QEMU
(ELF, kdump-compressed, migration stream) and Xen dump-core files are read directly;
VMware ``.vmss``/``.vmsn`` too, by crash 7.1.0 and later (``vmss2core -N6`` otherwise).
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from oob.analysis.extract import open_regular
from oob.dump.formats import (
    HEAD_SIZE,
    TAIL_SIZE,
    KernelRelease,
    Reader,
    VmcoreFormat,
    bytes_reader,
    detect_format,
    find_release,
    needs_tail,
    valid_release,
)
from oob.errors import DumpUnreadable
from oob.safetext import printable

#: bytes a path's release lookup may read in all (flattened records, compressed prefixes)
READ_BUDGET = 64 << 20
#: the first crash that reads VMware .vmss/.vmsn files (commit f7e4297, Feb 2015)
CRASH_VMSS_VERSION = "7.1.0"


class Family(StrEnum):
    """The distribution a kernel release string belongs to."""

    RHEL = "rhel"
    FEDORA = "fedora"
    ORACLE_UEK = "oracle-uek"
    DEBIAN = "debian"
    UBUNTU = "ubuntu"
    SUSE = "suse"
    UNKNOWN = "unknown"


_ARCH = r"(?:x86_64|aarch64|ppc64le|s390x)"
_RHEL = re.compile(rf"\d+\.\d+\.\d+-[\w.]+\.el\d+(?:_\d+)?\.{_ARCH}")
_UEK = re.compile(rf"\d+\.\d+\.\d+-[\w.]+\.el\d+uek\.{_ARCH}")
_FEDORA = re.compile(rf"\d+\.\d+\.\d+-[\w.]+\.fc\d+\.{_ARCH}")
_DEBIAN = re.compile(
    r"\d+\.\d+(?:\.\d+)?(?:-\d+|\+deb\d+(?:\.\d+)?|\+bpo)?-(?:cloud-|rt-)?"
    r"(?:amd64|arm64|686|686-pae|armmp|armmp-lpae|powerpc64le|s390x|riscv64|loong64|marvell|rpi)"
)
_UBUNTU = re.compile(
    r"\d+\.\d+\.\d+-\d+-(?:generic|generic-64k|generic-lpae|lowlatency|lowlatency-64k|aws|azure|gcp|gke|gkeop"
    r"|oracle|kvm|raspi|ibm|nvidia|intel-iotg|virtual)"
)
_SUSE = re.compile(
    r"\d+\.\d+\.\d+-(?P<abi>[\d.]+)-(?P<flavor>default|kvmsmall|64kb|rt|azure|vanilla|zfcpdump|pae)"
)
#: SUSE flavours other distributions also use: SUSE's ABI part has dots (150600.23.25)
_SUSE_SHARED = frozenset({"rt", "azure"})


def guess_family(release: str | None) -> Family:
    """The distribution family of a kernel release string (UNKNOWN when none fits)."""
    if not release:
        return Family.UNKNOWN
    if _UEK.fullmatch(release):
        return Family.ORACLE_UEK
    if _RHEL.fullmatch(release):
        return Family.RHEL
    if _FEDORA.fullmatch(release):
        return Family.FEDORA
    if _DEBIAN.fullmatch(release):
        return Family.DEBIAN
    suse = _SUSE.fullmatch(release)
    if suse and (suse["flavor"] not in _SUSE_SHARED or "." in suse["abi"]):
        return Family.SUSE
    if _UBUNTU.fullmatch(release):
        return Family.UBUNTU
    return Family.UNKNOWN


@dataclass(frozen=True)
class Debuginfo:
    """Where the debug vmlinux of one release comes from."""

    #: the package(s) to install, first the one to try first
    packages: tuple[str, ...]
    #: one shell command that installs it
    install: str
    #: what crash gets as its NAMELIST argument
    namelist: str
    #: the files with the debug info the packages ship (for crash, gdb, drgn)
    debug_files: tuple[str, ...]
    #: what else must be true (a repository to enable, a version to match)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "packages": list(self.packages),
            "install": self.install,
            "namelist": self.namelist,
            "debug_files": list(self.debug_files),
            "notes": list(self.notes),
        }


def debuginfo_for(release: str, family: Family) -> Debuginfo | None:
    """The debuginfo package and vmlinux of ``release`` on ``family`` (None: unknown)."""
    if family is Family.DEBIAN:
        package = f"linux-image-{release}-dbg"
        return Debuginfo(
            (package,),
            shlex.join(["apt-get", "install", package]),
            f"/usr/lib/debug/boot/vmlinux-{release}",
            (f"/usr/lib/debug/boot/vmlinux-{release}", f"/usr/lib/debug/vmlinux-{release}"),
        )
    if family is Family.UBUNTU:
        signed, unsigned = f"linux-image-{release}-dbgsym", f"linux-image-unsigned-{release}-dbgsym"
        return Debuginfo(
            (signed, unsigned),
            f"{shlex.join(['apt-get', 'install', signed])} || {shlex.join(['apt-get', 'install', unsigned])}",
            f"/usr/lib/debug/boot/vmlinux-{release}",
            (f"/usr/lib/debug/boot/vmlinux-{release}",),
            ("from ddebs.ubuntu.com: add its apt source and the ubuntu-dbgsym-keyring first",),
        )
    if family in (Family.RHEL, Family.FEDORA, Family.ORACLE_UEK):
        name = "kernel-uek-debuginfo" if family is Family.ORACLE_UEK else "kernel-debuginfo"
        package = f"{name}-{release}"
        vmlinux = f"/usr/lib/debug/lib/modules/{release}/vmlinux"
        repo = {
            Family.RHEL: "enable the debug repository (subscription-manager repos --enable=rhel-<N>-for-<arch>-baseos-debug-rpms)",
            Family.FEDORA: "from the debuginfo repositories (fedora-debuginfo, updates-debuginfo)",
            Family.ORACLE_UEK: "from the Oracle Linux debuginfo repository (oss.oracle.com/ol<N>/debuginfo)",
        }[family]
        install = ["dnf", "install", package]
        if family is Family.FEDORA:
            install = ["dnf", "--enablerepo=*-debuginfo", "install", package]
        return Debuginfo((package,), shlex.join(install), vmlinux, (vmlinux,), (repo,))
    if family is Family.SUSE:
        suse = _SUSE.fullmatch(release)
        flavor = suse["flavor"] if suse else "default"
        debuginfo, devel = f"kernel-{flavor}-debuginfo", f"kernel-{flavor}-devel"
        # SLE 15 and Leap kernels (ABI 1500xx...) compress /boot/vmlinux with gzip; Tumbleweed
        # with xz, which crash does not unpack by itself
        compressed = "gz" if suse and suse["abi"].startswith("150") else "xz"
        return Debuginfo(
            (debuginfo, devel),
            shlex.join(["zypper", "install", debuginfo, devel]),
            f"/boot/vmlinux-{release}.{compressed}",
            (f"/usr/lib/debug/boot/vmlinux-{release}.debug",),
            (
                f"the packages' version must be that of {release}; enable the Debuginfo repository",
                f"/boot/vmlinux-{release}.{compressed} comes with the kernel "
                f"(kernel-{flavor}, or {devel} where the build splits it); crash reads the debug info "
                "from the .debug file through its debuglink",
            ),
        )
    return None


@dataclass(frozen=True)
class CrashHandoff:
    """Everything an engineer needs to open the dump in crash, and what oob found of it."""

    #: the dump file (as given), None when only a release was known
    vmcore: str | None
    #: its format for people (``kdump-compressed (lzo)``) and who wrote it (qemu, xen, vmware)
    format: str | None
    producer: str | None
    release: str | None
    #: where the release was read: "kdump-compressed header (utsname release)", "kernel log"
    release_from: str | None
    family: Family
    debuginfo: Debuginfo | None
    #: the namelist, when it is on this machine
    vmlinux_present: str | None
    #: shell commands to run before crash (rebuild, unpack)
    prepare: tuple[str, ...]
    #: the file crash reads (the vmcore, or what ``prepare`` makes of it)
    crash_reads: str | None
    #: ``crash NAMELIST DUMP``, quoted for a shell; None without a known namelist
    crash_command: str | None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "vmcore": self.vmcore,
            "format": self.format,
            "producer": self.producer,
            "release": self.release,
            "release_from": self.release_from,
            "family": self.family.value,
            "debuginfo": self.debuginfo.to_dict() if self.debuginfo else None,
            "vmlinux_present": self.vmlinux_present,
            "prepare": list(self.prepare),
            "crash_reads": self.crash_reads,
            "crash_command": self.crash_command,
            "notes": list(self.notes),
        }

    def lines(self) -> list[str]:
        """The hand-off for people, one printable line each."""
        out = [
            f"kernel: {self.release or 'unknown'}"
            + (f" (from the {self.release_from})" if self.release_from else "")
        ]
        if self.debuginfo:
            have = " (present here)" if self.vmlinux_present else ""
            out.append(f"vmlinux: {self.debuginfo.namelist}{have}; install: {self.debuginfo.install}")
        out.extend(f"first: {command}" for command in self.prepare)
        if self.crash_command:
            out.append(f"crash: {self.crash_command}")
        out.extend(f"note: {note}" for note in self.notes)
        return [printable(line) for line in out]


def kernel_release(path_or_head: str | os.PathLike[str] | bytes) -> KernelRelease | None:
    """``(release, where)`` of a dump: a local file, or its first bytes in memory.

    kdump-compressed: the header's utsname, else the sub-header's VMCOREINFO; ELF: the
    VMCOREINFO note's ``OSRELEASE=``; flattened: the same inside its records; gzip, bzip2,
    xz: the same inside.  None when the dump does not say (a QEMU dump of a guest without
    vmcoreinfo, a VMware file, a head too short).  A path that cannot be read is
    :class:`DumpUnreadable`."""
    if isinstance(path_or_head, bytes):
        return find_release(bytes_reader(path_or_head))
    path = Path(path_or_head)
    fd = open_regular(path)
    try:
        return find_release(_file_reader(fd))
    except OSError as exc:
        raise DumpUnreadable(f"cannot read {printable(path)}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _file_reader(fd: int) -> Reader:
    budget = [READ_BUDGET]

    def read(offset: int, size: int) -> bytes:
        size = min(size, budget[0])
        if offset < 0 or size <= 0:
            return b""
        data = os.pread(fd, size, offset)
        budget[0] -= len(data)
        return data

    return read


def build_handoff(
    vmcore: str | os.PathLike[str] | None = None,
    *,
    release: str | None = None,
    release_from: str = "kernel log",
    root: Path = Path("/"),
    head: bytes | None = None,
    fmt: VmcoreFormat | None = None,
) -> CrashHandoff:
    """The hand-off for a local dump file, or for a release alone (``vmcore`` None).

    The release the dump names wins; ``release`` (from the kernel log, say) is used when
    the dump does not name one.  ``root`` is where installed files are looked for (tests).
    A dump that is not here (on a dump server) is described by its first bytes ``head``
    or its already detected ``fmt``: the file itself is then never opened."""
    found: KernelRelease | None = None
    notes: list[str] = []
    path = Path(vmcore) if vmcore is not None else None
    if path is not None and (head is not None or fmt is not None):
        fmt = fmt or detect_format(head or b"")
        found = kernel_release(head) if head else None
        if found is None and fmt.kernel and valid_release(fmt.kernel):
            found = KernelRelease(fmt.kernel, f"{fmt.kind} header")
    elif path is not None:
        fmt = _format_of(path)
        found = kernel_release(path)
    if found is None and valid_release(release):
        assert release is not None
        found = KernelRelease(release, release_from)
    family = guess_family(found.release if found else None)
    info = debuginfo_for(found.release, family) if found else None
    prepare, reads = _prepare(path, fmt, notes)
    namelist = info.namelist if info else None
    if info and namelist and namelist.endswith(".xz"):
        unpacked = Path(namelist).name[: -len(".xz")]
        prepare.append(f"{shlex.join(['xz', '-dc', namelist])} > {shlex.quote(unpacked)}")
        notes.append("crash unpacks a gzip or bzip2 vmlinux by itself, not an xz one")
        namelist = unpacked
    present = None
    if info and (root / info.namelist.lstrip("/")).is_file():
        present = info.namelist
    if found is None:
        notes.append(_no_release_note(fmt))
    elif family is Family.UNKNOWN:
        notes.append(
            f"{found.release} is from no distribution oob knows: install the vmlinux with debug info that "
            "matches it, then: crash VMLINUX DUMP"
        )
    command = shlex.join(["crash", namelist, reads]) if namelist and reads else None
    return CrashHandoff(
        vmcore=str(path) if path is not None else None,
        format=fmt.label if fmt else None,
        producer=fmt.producer if fmt else None,
        release=found.release if found else None,
        release_from=found.where if found else None,
        family=family,
        debuginfo=info,
        vmlinux_present=present,
        prepare=tuple(prepare),
        crash_reads=reads,
        crash_command=command,
        notes=tuple(notes),
    )


def _format_of(path: Path) -> VmcoreFormat:
    fd = open_regular(path)
    try:
        head = os.pread(fd, HEAD_SIZE, 0)
        fmt = detect_format(head)
        if needs_tail(fmt):
            size = os.fstat(fd).st_size
            fmt = detect_format(head, os.pread(fd, TAIL_SIZE, max(0, size - TAIL_SIZE)))
        return fmt
    except OSError as exc:
        raise DumpUnreadable(f"cannot read {printable(path)}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


_UNWRAP = {"gzip": ("gzip", ".gz"), "bzip2": ("bzip2", ".bz2"), "xz": ("xz", ".xz"), "lz4": ("lz4", ".lz4")}


def _prepare(path: Path | None, fmt: VmcoreFormat | None, notes: list[str]) -> tuple[list[str], str | None]:
    """Commands that make ``path`` something crash reads, and the file crash then reads."""
    if path is None or fmt is None:
        return [], None
    source = str(path)
    if fmt.kind == "flattened":
        rebuilt = _sibling(path, ".flat", "-rebuilt")
        if fmt.end_marker is False:
            notes.append(
                "the flattened stream has no end marker: it was cut short, the rebuilt dump will be partial"
            )
        return [f"{shlex.join(['makedumpfile', '-R', rebuilt])} < {shlex.quote(source)}"], rebuilt
    if fmt.kind in _UNWRAP:
        tool, suffix = _UNWRAP[fmt.kind]
        unpacked = _sibling(path, suffix, "-unpacked")
        unpack = shlex.join([tool, "-dc", source])
        if fmt.inner == "flattened":
            return [f"{unpack} | {shlex.join(['makedumpfile', '-R', unpacked])}"], unpacked
        if fmt.inner is None:
            notes.append(f"if {unpacked} turns out to be a flattened stream, rebuild it with makedumpfile -R")
        return [f"{unpack} > {shlex.quote(unpacked)}"], unpacked
    if fmt.kind == "vmware-vmss":
        # vmss2core takes the checkpoint and, when the memory is a file of its own (ESXi
        # snapshots, Workstation), that .vmem: docs/ESXI.md
        memory = path.with_suffix(".vmem")
        convert = ["vmss2core", "-N6", source, *([str(memory)] if memory.is_file() else [])]
        notes.append(
            f"crash {CRASH_VMSS_VERSION} and later read .vmss/.vmsn files directly (a companion .vmem must sit "
            "beside them when the memory is not inside); with an older crash convert it first: "
            f"{shlex.join(convert)} (a Linux guest; for a Windows guest -W, or -W8 from Windows 8 and "
            "Server 2012 on, writes a memory.dmp for WinDbg)"
        )
    elif fmt.kind == "qemu-savevm":
        notes.append(
            "a virsh dump without --memory-only (a QEMU migration stream): crash's kvmdump code still "
            "recognises it, but libvirt and Red Hat document that crash no longer reads this format; if crash "
            "refuses it, dump the guest again with virsh dump --memory-only (ELF, or --format kdump-zlib)"
        )
    elif fmt.producer == "xen":
        notes.append("a Xen dump-core file (xl dump-core): crash reads it directly with the guest's vmlinux")
    elif fmt.producer == "qemu":
        notes.append("a QEMU guest-memory dump (virsh dump --memory-only): crash reads it directly")
    elif fmt.kind in ("empty", "unknown"):
        notes.append(f"{printable(source)} is not a dump format oob knows ({fmt.kind})")
    if fmt.marked_incomplete:
        notes.append(
            "the dump is marked incomplete: crash may fail on the missing parts (try crash --minimal)"
        )
    return [], source


def _sibling(path: Path, suffix: str, marker: str) -> str:
    name = (
        path.name[: -len(suffix)]
        if path.name.endswith(suffix) and len(path.name) > len(suffix)
        else path.name + marker
    )
    return str(path.with_name(name))


def _no_release_note(fmt: VmcoreFormat | None) -> str:
    if fmt is not None and fmt.producer in ("qemu", "xen", "vmware"):
        return (
            "the dump does not name the guest's kernel (no VMCOREINFO in it): take the release from the guest's "
            "kernel log or uname -r, then install its debug vmlinux"
        )
    return "the kernel release is unknown: neither the dump nor the log names it"


def handoff_for_dump(
    path: str,
    *,
    server: str | None,
    head: bytes | None = None,
    fmt: VmcoreFormat | None = None,
    release: str | None = None,
) -> CrashHandoff:
    """The hand-off for a dump on a target: ``path`` on its own machine, ``server`` the
    dump server's ``user@host`` (None: a local path). The file is never opened here."""
    handoff = build_handoff(
        path, release=release, head=head, fmt=fmt or (None if head else VmcoreFormat("unknown"))
    )
    if server is None:
        return handoff
    where = (
        f"the dump is on {printable(server)}: run these there, or copy it here first (oob analyze --fetch)"
    )
    return replace(handoff, notes=(where, *handoff.notes))
