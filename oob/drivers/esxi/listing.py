"""Reading what ``vmdumper -l`` and ``vim-cmd vmsvc/...`` print on an ESXi host.

Everything here is hostile input: a VM's display name is chosen by whoever created the VM,
and it is printed inside the very lines oob reads.  So:

- the output is bounded before it gets here (:mod:`oob.drivers.esxi.remote`), and again
  here: at most :data:`MAX_LINES` lines of at most :data:`MAX_LINE` characters are read;
- a line is read only when it has exactly the documented shape, and only when it can be read
  **one way**: the separators between its fields (``" uuid="…" displayName="``; a word
  ending in ``.vmx`` after ``[datastore] ``) must occur exactly once where they could; a
  name that holds them itself (``evil" uuid="" displayName="web01``) makes the line
  *ambiguous*, and it names no VM.  Reading is linear in the line's length (no pattern
  that backtracks over two open-ended fields);
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
from collections.abc import Callable, Iterator
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
# ``vmdumper -l``: ESXi 5 and later start the line with ``wid=``; the ESX 4 vm-support script
# reads ``vmid=`` in the same place (the world ID of the VM's first world).  Both are a world ID.
# The line is anchored at both ends (the head and the tail below); what lies between is
# ``CFG" uuid="UUID" displayName="NAME``, read where the one separator pair is.
_VMDUMPER_HEAD = re.compile(r'(?:wid|vmid)=(?P<wid>\d{1,19}) pid=-?\d{1,19} cfgFile="')
_VMDUMPER_TAIL = re.compile(r'" vmxCartelID=(?P<cartel>\d{1,19})\Z')
_UUID_SEPARATOR = '" uuid="'
_NAME_SEPARATOR = '" displayName="'
_UUID_CHARACTERS = frozenset("0123456789abcdefABCDEF -")
_UUID_MAX = 64

# ``vim-cmd vmsvc/getallvms``: Vmid, Name, File ("[datastore] path.vmx"), Guest OS, Version,
# Annotation (free text, which may run over several lines)
_GETALLVMS_HEAD = re.compile(r"(?P<vmid>\d{1,19})\s+(?=\S)")
_VMX_END = re.compile(r"\.vmx(?=\s|\Z)")
# a datastore name holds no bracket: each scan for one ends at the next "[", so finding
# every candidate stays linear
_FILE_START = re.compile(r"\s\[[^\[\]\n]{1,256}\] ")

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


def _split(text: str) -> list[str]:
    """The lines as the tools end them (``\n``; a ``\r`` before it dropped).  Not
    ``str.splitlines``: that also breaks at U+2028, U+0085, form feeds…, which a display name
    may hold, and a name could then start a line of its own."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _lines(text: str) -> Iterator[tuple[str, bool]]:
    """(line, too long) for each of the first MAX_LINES lines."""
    for index, line in enumerate(_split(text)):
        if index >= MAX_LINES:
            return
        yield line[: MAX_LINE + 1], len(line) > MAX_LINE


def _shown(line: str) -> str:
    cut = line if len(line) <= SHOWN else line[:SHOWN] + "…"
    return printable(cut)


#: the largest ID a command may carry (oob.drivers.esxi.commands checks the same)
MAX_ID = 2**63 - 1


def _id(text: str) -> int | None:
    value = int(text)
    return value if 0 < value <= MAX_ID else None


def _vmdumper_line(line: str) -> RunningVm | None:
    """One line of ``vmdumper -l``, or None when it has not exactly one reading.

    Linear in the line's length: the separators are found with ``str.find``, each candidate
    checked over at most 64 characters (a backtracking pattern with two open-ended quoted
    fields took seconds on a crafted megabyte)."""
    head = _VMDUMPER_HEAD.match(line)
    if head is None:
        return None
    tail = _VMDUMPER_TAIL.search(line, max(head.end(), len(line) - 40))
    if tail is None:
        return None
    middle = line[head.end() : tail.start()]
    readings = []
    at = middle.find(_UUID_SEPARATOR)
    while at != -1:
        uuid_start = at + len(_UUID_SEPARATOR)
        uuid_end = middle.find('"', uuid_start, uuid_start + _UUID_MAX + 1)
        if (
            uuid_end != -1
            and _UUID_CHARACTERS.issuperset(middle[uuid_start:uuid_end])
            and middle.startswith(_NAME_SEPARATOR, uuid_end)
        ):
            readings.append((at, uuid_start, uuid_end))
        at = middle.find(_UUID_SEPARATOR, at + 1)
    if len(readings) != 1:
        # no separator pair, or several: a name or path holding '" uuid="…" displayName="'
        return None
    at, uuid_start, uuid_end = readings[0]
    wid, cartel = _id(head["wid"]), _id(tail["cartel"])
    if wid is None or cartel is None:
        return None
    return RunningVm(
        wid=wid,
        cfg_file=middle[:at],
        uuid=middle[uuid_start:uuid_end],
        display_name=middle[uuid_end + len(_NAME_SEPARATOR) :],
        cartel=cartel,
    )


def _getallvms_line(line: str) -> RegisteredVm | None:
    """One VM line of ``getallvms`` (stripped), or None when it has not exactly one reading:
    one ``.vmx`` that ends a word, and one ``[datastore] `` before it."""
    head = _GETALLVMS_HEAD.match(line)
    if head is None:
        return None
    ends = [m.end() for m in _VMX_END.finditer(line, head.end())]
    if len(ends) != 1:
        return None
    starts = list(_FILE_START.finditer(line, head.end() - 1, ends[0]))
    if len(starts) != 1:
        return None
    name = line[head.end() : starts[0].start()].strip()
    vmid = _id(head["vmid"])
    if not name or vmid is None:
        return None
    return RegisteredVm(vmid=vmid, name=name, file=line[starts[0].start() + 1 : ends[0]])


def parse_vmdumper(text: str, wanted: str = "") -> Listing[RunningVm]:
    """``vmdumper -l``; ``wanted``: the display name the caller looks for (for
    :attr:`Listing.suspicious`)."""
    return _listing(text, wanted, _vmdumper_line, lambda line: not line.strip())


def parse_getallvms(text: str, wanted: str = "") -> Listing[RegisteredVm]:
    """``vim-cmd vmsvc/getallvms``: the header line and annotation lines are skipped; a line
    that starts with a number but has not one reading is unread."""

    def not_a_vm(line: str) -> bool:
        # the header, or an annotation's further lines: not a VM's line (an annotation line
        # that reads as a VM's is caught by the caller: a name or vmid on two lines)
        stripped = line.strip()
        return not stripped or not stripped[0].isdigit()

    return _listing(text, wanted, lambda line: _getallvms_line(line.strip()), not_a_vm)


def _listing(
    text: str, wanted: str, read: Callable[[str], _T | None], skipped: Callable[[str], bool]
) -> Listing[_T]:
    """Each line read one way or not at all: the VMs read, the lines that could not be (those
    that mention ``wanted`` kept, shown escaped), and whether the text was cut."""
    vms: list[_T] = []
    unread = 0
    suspicious: list[str] = []
    for line, too_long in _lines(text):
        if skipped(line):
            continue
        found = None if too_long else read(line)
        if found is None:
            unread += 1
            if wanted and wanted in line:
                suspicious.append(_shown(line))
            continue
        vms.append(found)
    return Listing(tuple(vms), unread, tuple(suspicious), len(_split(text)) > MAX_LINES)


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
