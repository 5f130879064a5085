"""Reading what ``vmdumper -l`` and ``vim-cmd vmsvc/...`` print on an ESXi host.

Everything here is hostile input: a VM's display name is chosen by whoever created the VM,
and it is printed inside the very lines oob reads.  So:

- the output is bounded before it gets here (:mod:`oob.drivers.esxi.remote`), and again
  here: at most :data:`MAX_LINES` lines of at most :data:`MAX_LINE` characters are read;
- a line is read only when it has exactly the documented shape, and only when it can be read
  **one way**: a quoted field (``cfgFile="..."``, ``displayName="..."``) is read both as the
  shortest and as the longest text the line allows; when the two readings differ (a name
  that holds ``" displayName="`` itself, say) the line is *ambiguous* and names no VM;
- a line that is not read is counted, and kept (cut short) when it holds the wanted name:
  the caller then refuses rather than guess which VM it was;
- nothing read here is ever put into a command: commands are built from the integers this
  module returns (world ID, vmid), never from names (:mod:`oob.drivers.esxi.commands`).

Formats (see docs/ESXI.md for the sources, and which parts are documented or assumed)::

    $ vmdumper -l
    wid=2099719 pid=-1 cfgFile="/vmfs/volumes/5d35.../web01/web01.vmx" uuid="56 4d 74 f8 ..." \
displayName="web01" vmxCartelID=2099713

    $ vim-cmd vmsvc/getallvms
    Vmid   Name    File                        Guest OS        Version   Annotation
    1      web01   [datastore1] web01/web01.vmx rhel9_64Guest  vmx-19

    $ vim-cmd vmsvc/power.getstate 1
    Retrieved runtime info
    Powered on
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from oob.model import PowerState
from oob.safetext import printable

#: lines read from one listing; ESXi 8 runs at most 1,024 VMs per host
MAX_LINES = 8192
#: characters of one line; a display name is at most 80 characters, a path at most ~4,096
MAX_LINE = 8192
#: characters of a line kept for a message
SHOWN = 160
#: world IDs, vmids and cartel IDs are unsigned 32- or 64-bit numbers
_ID = r"\d{1,19}"

# ``vmdumper -l``: ESXi 5 and later start the line with ``wid=``; the ESX 4 vm-support script
# reads ``vmid=`` in the same place (the world ID of the VM's first world).  Both are a world ID.
_VMDUMPER = r"(?:wid|vmid)=(?P<wid>{id}) pid=(?P<pid>-?\d{{1,19}}) cfgFile=\"(?P<cfg>.{q})\" uuid=\"(?P<uuid>[0-9A-Fa-f -]{{0,64}})\" displayName=\"(?P<name>.{q})\" vmxCartelID=(?P<cartel>{id})"
_VMDUMPER_SHORT = re.compile(_VMDUMPER.format(id=_ID, q="*?"))
_VMDUMPER_LONG = re.compile(_VMDUMPER.format(id=_ID, q="*"))

# ``vim-cmd vmsvc/getallvms``: Vmid, Name, File ("[datastore] path.vmx"), Guest OS, Version,
# Annotation (free text, which may run over several lines)
_GETALLVMS = (
    r"(?P<vmid>{id})\s+(?P<name>\S(?:.{q}\S)?)\s+(?P<file>\[[^\]\n]{{1,256}}\] .{q}\.vmx)(?:\s+(?P<rest>.*))?"
)
_GETALLVMS_SHORT = re.compile(_GETALLVMS.format(id=_ID, q="*?"))
_GETALLVMS_LONG = re.compile(_GETALLVMS.format(id=_ID, q="*"))

#: ``vim-cmd`` prints a fault as ``(vim.fault.InvalidPowerState) {`` on a line of its own
_FAULT = re.compile(r"\((?P<fault>vim\.fault\.[A-Za-z]{1,64}|vmodl\.fault\.[A-Za-z]{1,64})\)\s*\{?")

_POWER_STATES = {
    "powered on": PowerState.ON,
    "powered off": PowerState.OFF,
    # a suspended VM runs nothing: for an NMI it is as good as off
    "suspended": PowerState.OFF,
}


@dataclass(frozen=True)
class RunningVm:
    """One line of ``vmdumper -l``: a VM that is running now."""

    wid: int
    cfg_file: str
    uuid: str
    display_name: str
    cartel: int


@dataclass(frozen=True)
class RegisteredVm:
    """One line of ``vim-cmd vmsvc/getallvms``: a VM the host knows, running or not."""

    vmid: int
    name: str
    file: str


_T = TypeVar("_T")


@dataclass(frozen=True)
class Listing(Generic[_T]):
    """What a listing said: the lines read, and those that were not."""

    vms: tuple[_T, ...]
    #: lines that had content but not the documented shape, or more than one reading
    unread: int
    #: of those, the ones that mention the wanted name (cut short, printable): one of them
    #: could be the VM, so the caller refuses
    suspicious: tuple[str, ...]
    #: the listing had more lines than are read
    cut: bool


def _lines(text: str) -> Iterator[tuple[str, bool]]:
    """(line, too long) for each of the first MAX_LINES lines."""
    for index, line in enumerate(text.splitlines()):
        if index >= MAX_LINES:
            return
        yield line[: MAX_LINE + 1], len(line) > MAX_LINE


def _shown(line: str) -> str:
    cut = line if len(line) <= SHOWN else line[:SHOWN] + "…"
    return printable(cut)


def parse_vmdumper(text: str, wanted: str = "") -> Listing[RunningVm]:
    """``vmdumper -l``; ``wanted``: the display name the caller looks for (for
    :attr:`Listing.suspicious`)."""
    vms: list[RunningVm] = []
    unread = 0
    suspicious: list[str] = []
    for line, too_long in _lines(text):
        if not line.strip():
            continue
        short = None if too_long else _VMDUMPER_SHORT.fullmatch(line)
        long = None if too_long else _VMDUMPER_LONG.fullmatch(line)
        if short is None or long is None or short.groupdict() != long.groupdict():
            unread += 1
            if wanted and wanted in line:
                suspicious.append(_shown(line))
            continue
        vms.append(
            RunningVm(
                wid=int(short["wid"]),
                cfg_file=short["cfg"],
                uuid=short["uuid"],
                display_name=short["name"],
                cartel=int(short["cartel"]),
            )
        )
    return Listing(tuple(vms), unread, tuple(suspicious), len(text.splitlines()) > MAX_LINES)


def parse_getallvms(text: str, wanted: str = "") -> Listing[RegisteredVm]:
    """``vim-cmd vmsvc/getallvms``: the header line and annotation lines are skipped; a line
    that starts with a number but has not one reading is unread."""
    vms: list[RegisteredVm] = []
    unread = 0
    suspicious: list[str] = []
    for line, too_long in _lines(text):
        stripped = line.strip()
        if not stripped or not stripped[0].isdigit():
            # the header, or an annotation's further lines: not a VM's line (an annotation
            # line that starts with a number and reads as a VM's is caught by the caller's
            # check for two VMs of one name: the real VM is listed too)
            continue
        short = None if too_long else _GETALLVMS_SHORT.fullmatch(stripped)
        long = None if too_long else _GETALLVMS_LONG.fullmatch(stripped)
        if (
            short is None
            or long is None
            or (short["vmid"], short["name"], short["file"])
            != (
                long["vmid"],
                long["name"],
                long["file"],
            )
        ):
            unread += 1
            if wanted and wanted in line:
                suspicious.append(_shown(line))
            continue
        vms.append(RegisteredVm(vmid=int(short["vmid"]), name=short["name"], file=short["file"]))
    return Listing(tuple(vms), unread, tuple(suspicious), len(text.splitlines()) > MAX_LINES)


def parse_power_state(text: str) -> PowerState | None:
    """``vim-cmd vmsvc/power.getstate VMID``: the state line, or None when there is none
    (or more than one, which no real answer has)."""
    found = {
        _POWER_STATES[line.strip().lower()]
        for line, _ in _lines(text)
        if line.strip().lower() in _POWER_STATES
    }
    return found.pop() if len(found) == 1 else None


def parse_fault(text: str) -> str | None:
    """The ``vim.fault.NAME`` a ``vim-cmd`` answer starts a line with, if any."""
    for line, _ in _lines(text):
        match = _FAULT.match(line.strip())
        if match:
            return match["fault"]
    return None


def first_line(text: str) -> str | None:
    """The first non-empty line, cut short and printable: what a message may quote."""
    for line, _ in _lines(text):
        if line.strip():
            return _shown(line.strip())
    return None
