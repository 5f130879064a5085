"""How each distribution names its dump directories and when a dump in one is complete.

Pure functions over names, file listings and small texts (README.txt): no I/O, so every
rule of docs/KDUMP.md is tested here without a file system.

Directory names under the target path (times are the crashed host's local time, and are
informative only: never compare them with our clock to decide what is new):

=============  =========================================  =========================================
family         local / fs target                          nfs / ssh target
=============  =========================================  =========================================
rhel           ``127.0.0.1-%Y-%m-%d-%H:%M:%S``            ``<ip>-%Y-%m-%d-%H:%M:%S`` (IPv6 too)
               before 2015 ``%Y.%m.%d-%H:%M:%S``; raw target saved at next boot
               ``%Y-%m-%d-%H:%M``; ``kdumpctl test`` ``kdump-test-<id>``
suse           ``%Y-%m-%d-%H-%M`` (kdump >= 1.9)           ``<hostname>-%Y-%m-%d-%H-%M``
suse-old       ``%Y-%m-%d-%H:%M`` (kdump <= 1.8)           ``<ip>-%Y-%m-%d-%H:%M`` or ``unknown-...``
debian         ``%Y%m%d%H%M``                             ``<ip or hostname>-%Y%m%d%H%M``
=============  =========================================  =========================================

``%Y-%m-%d-%H:%M`` is both RHEL's raw-target form and old SUSE's local form: the files
inside decide (:func:`assess`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from oob.errors import UsageError


class Family(StrEnum):
    RHEL = "rhel"
    SUSE = "suse"
    SUSE_OLD = "suse-old"
    DEBIAN = "debian"


ALL_FAMILIES: tuple[Family, ...] = (Family.RHEL, Family.SUSE, Family.SUSE_OLD, Family.DEBIAN)

#: ``dump.layout`` (inventory) or ``--layout`` -> the families it allows.  "suse" covers both
#: generations: a SUSE host upgraded across kdump 1.9 changes its names, not its layout.
LAYOUT_FAMILIES: dict[str, tuple[Family, ...]] = {
    "auto": ALL_FAMILIES,
    "rhel": (Family.RHEL,),
    "fedora": (Family.RHEL,),
    "suse": (Family.SUSE, Family.SUSE_OLD),
    "suse-old": (Family.SUSE_OLD,),
    "debian": (Family.DEBIAN,),
    "ubuntu": (Family.DEBIAN,),
}

#: identities in local-form names that say nothing about which host wrote the dump
LOCAL_IDENTITIES = frozenset({"127.0.0.1", "::1", "localhost", "unknown"})

_ID = r"(?:(?P<id>.+)-)?"


@dataclass(frozen=True)
class _NameForm:
    family: Family
    form: str
    regex: re.Pattern[str]
    time_format: str | None


_FORMS: tuple[_NameForm, ...] = (
    _NameForm(
        Family.RHEL,
        "standard",
        re.compile(_ID + r"(?P<stamp>\d{4}-\d\d-\d\d-\d\d:\d\d:\d\d)"),
        "%Y-%m-%d-%H:%M:%S",
    ),
    _NameForm(
        Family.RHEL,
        "pre-2015",
        re.compile(_ID + r"(?P<stamp>\d{4}\.\d\d\.\d\d-\d\d:\d\d:\d\d)"),
        "%Y.%m.%d-%H:%M:%S",
    ),
    _NameForm(Family.RHEL, "test", re.compile(_ID + r"kdump-test-(?P<stamp>[^/]+)"), None),
    # raw target, saved by kdumpctl at the next boot; same shape as old SUSE's local form
    _NameForm(Family.RHEL, "raw", re.compile(r"(?P<stamp>\d{4}-\d\d-\d\d-\d\d:\d\d)"), "%Y-%m-%d-%H:%M"),
    _NameForm(
        Family.SUSE, "standard", re.compile(_ID + r"(?P<stamp>\d{4}-\d\d-\d\d-\d\d-\d\d)"), "%Y-%m-%d-%H-%M"
    ),
    _NameForm(
        Family.SUSE_OLD,
        "standard",
        re.compile(_ID + r"(?P<stamp>\d{4}-\d\d-\d\d-\d\d:\d\d)"),
        "%Y-%m-%d-%H:%M",
    ),
    _NameForm(Family.DEBIAN, "standard", re.compile(_ID + r"(?P<stamp>\d{12})"), "%Y%m%d%H%M"),
)


@dataclass(frozen=True)
class DirName:
    """A directory name that one or more layouts would write."""

    name: str
    #: every family whose naming fits, most likely first (ambiguous only for RHEL raw vs old SUSE)
    families: tuple[Family, ...]
    #: the IP or host name in the name; None for local forms (``127.0.0.1-``, ``unknown-``, none)
    identity: str | None
    #: "standard", "pre-2015", "raw", "test"
    form: str
    #: the crashed host's local time of the crash, from the name (None for kdump-test)
    stamp: datetime | None

    @property
    def family(self) -> Family:
        return self.families[0]

    @property
    def is_local_form(self) -> bool:
        return self.identity is None


def families_for(layout: str) -> tuple[Family, ...]:
    """Families allowed by a layout name (``auto``, ``rhel``, ``suse``, ``suse-old``, ``debian``)."""
    try:
        return LAYOUT_FAMILIES[layout.strip().lower()]
    except KeyError:
        known = ", ".join(LAYOUT_FAMILIES)
        raise UsageError(f"unknown dump layout '{layout}' (known: {known})") from None


def parse_dir_name(name: str, families: tuple[Family, ...] = ALL_FAMILIES) -> DirName | None:
    """The layouts a directory name fits, or None (``kexec_cmd``, ``kdump_lock``, ``lost+found``)."""
    found: list[tuple[_NameForm, re.Match[str]]] = []
    for form in _FORMS:
        if form.family not in families:
            continue
        match = form.regex.fullmatch(name)
        if match is None:
            continue
        if form.time_format is not None and _stamp(match["stamp"], form.time_format) is None:
            continue
        found.append((form, match))
    if not found:
        return None
    form, match = found[0]
    identity = _identity(match.groupdict().get("id"))
    # the raw form carries no identity; old SUSE may (and then it is not RHEL raw)
    fitting = tuple(dict.fromkeys(f.family for f, m in found if f.form != "raw" or identity is None))
    stamp = _stamp(match["stamp"], form.time_format) if form.time_format else None
    return DirName(name=name, families=fitting, identity=identity, form=form.form, stamp=stamp)


def _stamp(text: str, fmt: str) -> datetime | None:
    try:
        return datetime.strptime(text, fmt)
    except ValueError:
        return None


def _identity(raw: str | None) -> str | None:
    if raw is None:
        return None
    text = raw.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if text.lower() in LOCAL_IDENTITIES or not text:
        return None
    return text


# ---------------------------------------------------------------------------------------------
# Completion rules


#: what an entry is, from lstat (a symbolic link is never followed to find out more)
EntryKind = Literal["file", "dir", "symlink", "other"]


@dataclass(frozen=True)
class FileInfo:
    """One entry of a dump directory, as listed (no content)."""

    name: str
    size: int
    mtime: float = 0.0
    #: "file" (regular), "dir", "symlink", or "other" (FIFO, device, socket)
    kind: EntryKind = "file"

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"

    @property
    def is_regular(self) -> bool:
        return self.kind == "file"


Status = Literal["writing", "complete", "failed"]


@dataclass(frozen=True)
class Verdict:
    status: Status
    family: Family
    #: the file(s) holding the memory image, final or incomplete name (several for vmcore1..N)
    vmcore: tuple[str, ...]
    #: the kernel log file, when present
    dmesg: str | None
    #: why, in words an engineer can check by hand
    reason: str
    #: complete only once the listing has not changed for one poll (raw target: the file is
    #: written in place under its final name, with no incomplete stage)
    settle: bool = False

    @property
    def vmcore_name(self) -> str | None:
        return self.vmcore[0] if self.vmcore else None


#: files whose content a rule reads (small texts only)
README = "README.txt"
README_DONE_PREFIX = "Kernel crashdump"
SUSE_SAVED_OK = "vmcore status: saved successfully"

_SUSE_OLD_MARKERS = ("dmesg.txt", "dmesg.txt-incomplete", "README.txt", "README.txt-incomplete", "vmcore1")
_DEBIAN_DUMP = re.compile(r"dump\.\d{12}(?:\.(?:gz|bz2|lz4|xz))?")
_DEBIAN_VMCORE = re.compile(r"vmcore\.\d{12}")
_DEBIAN_DMESG = re.compile(r"dmesg\.\d{12}")
_SPLIT_VMCORE = re.compile(r"vmcore(\d+)")


def texts_needed(dirname: DirName, files: Mapping[str, FileInfo]) -> tuple[str, ...]:
    """Small files whose content :func:`assess` needs (SUSE's README.txt)."""
    if README in files and (Family.SUSE in dirname.families):
        return (README,)
    return ()


def resolve_family(dirname: DirName, files: Mapping[str, FileInfo]) -> Family:
    """The family of an ambiguous name, from the files inside."""
    if len(dirname.families) == 1:
        return dirname.family
    if Family.SUSE_OLD in dirname.families and any(name in files for name in _SUSE_OLD_MARKERS):
        return Family.SUSE_OLD
    return dirname.family


def assess(
    dirname: DirName, files: Mapping[str, FileInfo], texts: Mapping[str, str] | None = None
) -> Verdict:
    """Whether the dump in a directory is still being written, complete or failed.

    ``files`` is the directory listing by name; ``texts`` the content of the files named by
    :func:`texts_needed`.
    """
    texts = texts or {}
    family = resolve_family(dirname, files)
    if family is Family.RHEL:
        return _rhel(dirname, files)
    if family is Family.SUSE:
        return _suse(files, texts)
    if family is Family.SUSE_OLD:
        return _suse_old(files)
    return _debian(files)


def _rhel(dirname: DirName, files: Mapping[str, FileInfo]) -> Verdict:
    dmesg = _first(files, "vmcore-dmesg.txt", "vmcore-dmesg-incomplete.txt")
    final = _first(files, "vmcore", "vmcore.flat")
    incomplete = "vmcore-incomplete" in files
    if final and not incomplete:
        if dirname.form == "raw":
            return Verdict(
                "complete",
                Family.RHEL,
                (final,),
                dmesg,
                f"{final} saved from the raw target (kdumpctl, at boot)",
                settle=True,
            )
        return Verdict(
            "complete", Family.RHEL, (final,), dmesg, f"{final} exists and vmcore-incomplete does not"
        )
    vmcore = ("vmcore-incomplete",) if incomplete else ((final,) if final else ())
    if "kexec-dmesg.log" in files:
        # kdump writes its own log last, whatever happened: with no vmcore it failed
        if incomplete:
            why = "kdump finished (kexec-dmesg.log) but left vmcore-incomplete: saving the vmcore failed"
        else:
            why = "kdump finished (kexec-dmesg.log) without saving a vmcore"
        return Verdict("failed", Family.RHEL, vmcore, dmesg, why)
    if incomplete:
        return Verdict("writing", Family.RHEL, vmcore, dmesg, "vmcore-incomplete is being written")
    return Verdict("writing", Family.RHEL, vmcore, dmesg, "waiting for vmcore-incomplete")


def _suse(files: Mapping[str, FileInfo], texts: Mapping[str, str]) -> Verdict:
    vmcore = ("vmcore",) if "vmcore" in files else ()
    dmesg = _first(files, "dmesg")
    readme = texts.get(README)
    if README in files and readme is not None and readme.lstrip().startswith(README_DONE_PREFIX):
        status = _suse_status(readme)
        if status is None:
            # caught half-way through the rewrite: the status line comes later
            return Verdict("writing", Family.SUSE, vmcore, dmesg, "README.txt is being finalised")
        if "saved successfully" in status.lower():
            return Verdict("complete", Family.SUSE, vmcore, dmesg, f"README.txt says '{SUSE_SAVED_OK}'")
        return Verdict(
            "failed",
            Family.SUSE,
            vmcore,
            dmesg,
            f"README.txt was finalised with '{status}', not '{SUSE_SAVED_OK}'",
        )
    if README in files:
        return Verdict(
            "writing",
            Family.SUSE,
            vmcore,
            dmesg,
            "README.txt is still the placeholder ('the crash dump is likely incomplete')",
        )
    return Verdict("writing", Family.SUSE, vmcore, dmesg, "waiting for README.txt")


def _suse_status(text: str) -> str | None:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.lower().startswith("vmcore status:"):
            return stripped
    return None


def _suse_old(files: Mapping[str, FileInfo]) -> Verdict:
    split = sorted((n for n in files if _SPLIT_VMCORE.fullmatch(n)), key=lambda n: int(n[6:]))
    if "vmcore" in files:
        vmcore: tuple[str, ...] = ("vmcore",)
    elif split:
        vmcore = tuple(split)
    else:
        vmcore = tuple(n for n in ("vmcore-incomplete",) if n in files)
    dmesg = _first(files, "dmesg.txt", "dmesg.txt-incomplete")
    if README in files:
        # kdumptool writes README.txt last (over ssh as README.txt-incomplete, then renamed)
        return Verdict("complete", Family.SUSE_OLD, vmcore, dmesg, "README.txt present (written last)")
    return Verdict(
        "writing", Family.SUSE_OLD, vmcore, dmesg, "waiting for README.txt, which kdump writes last"
    )


def _debian(files: Mapping[str, FileInfo]) -> Verdict:
    incomplete = sorted(n for n in files if "-incomplete" in n)
    final = sorted(n for n in files if _DEBIAN_DUMP.fullmatch(n) or _DEBIAN_VMCORE.fullmatch(n))
    dmesg = next((n for n in sorted(files) if _DEBIAN_DMESG.fullmatch(n)), None)
    vmcore_incomplete = [n for n in incomplete if n.startswith(("dump-incomplete", "vmcore-incomplete"))]
    if final and not incomplete:
        return Verdict(
            "complete",
            Family.DEBIAN,
            (final[0],),
            dmesg,
            f"{final[0]} exists and no *-incomplete file remains",
        )
    vmcore = tuple(vmcore_incomplete) or tuple(final)
    if incomplete:
        return Verdict("writing", Family.DEBIAN, vmcore, dmesg, f"{incomplete[0]} is being written")
    return Verdict("writing", Family.DEBIAN, vmcore, dmesg, "waiting for dump-incomplete")


def _first(files: Mapping[str, FileInfo], *names: str) -> str | None:
    return next((name for name in names if name in files), None)


#: how each family says "complete", for messages (stalled, timeout)
COMPLETION_RULES: dict[Family, str] = {
    Family.RHEL: "complete when vmcore (or vmcore.flat) exists and vmcore-incomplete does not",
    Family.SUSE: "complete when README.txt begins 'Kernel crashdump' and says 'vmcore status: saved successfully'",
    Family.SUSE_OLD: "complete when README.txt is present (written last)",
    Family.DEBIAN: "complete when dump.<stamp>* or vmcore.<stamp> exists and no *-incomplete file remains",
}
