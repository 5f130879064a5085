"""The BMC's own event logs around an incident: typed entries, the window, a summary.

Engineers open the BMC's logs by hand after a crash: iLO's Integrated Management Log,
iDRAC's SEL and Lifecycle log, OpenBMC's event log, any BMC's IPMI SEL.  Two things
there explain what the kernel log cannot: the **NMI itself** (proof the BMC delivered
it, and when, on the BMC's clock) and **hardware errors** (machine checks, memory/ECC,
PCIe, power) that hang a machine without a word from the kernel.

The drivers read the logs (Redfish LogServices in :mod:`oob.drivers.redfish.logs`, the
IPMI SEL in :mod:`oob.drivers.ipmi.sel`) and hand each raw entry to a
:class:`LogCollector`, which

* bounds every string the BMC wrote (:data:`MAX_TEXT`) — the console shows them through
  :func:`oob.safetext.printable` (:func:`summary_lines` does), JSON escapes by itself;
* parses the entry's time (a hostile or broken clock: unparseable times are *skipped and
  counted*, never guessed);
* keeps entries inside the incident :class:`Window` and counts the rest;
* classifies severity and what the entry is about (:class:`EntryKind`), by MessageId,
  IPMI sensor type and event offset, and as a last resort the message text.

Reading a log is never an error of the incident: a BMC without LogServices is
:attr:`SourceStatus.NOT_OFFERED`, a log that failed is :attr:`SourceStatus.UNREADABLE`
with the reason, a log cut short by oob's bounds is :attr:`SourceStatus.TRUNCATED`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from oob.model import HYPERVISOR_KINDS
from oob.safetext import printable

#: longest string oob keeps from a BMC log entry (messages are a line or two)
MAX_TEXT = 300
#: most entries kept in one result (the rest are counted, not kept)
MAX_KEPT = 500
#: how far before the NMI the incident window opens by default: the hang itself (a
#: machine check, a failing DIMM) happened before the engineer reached for the NMI
DEFAULT_LEAD = dt.timedelta(minutes=30)

UTC = dt.UTC


class Severity(StrEnum):
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    UNKNOWN = "unknown"


class EntryKind(StrEnum):
    """What an entry is about, as far as the incident goes."""

    #: the NMI / diagnostic interrupt oob sent (or a front-panel one)
    NMI = "nmi"
    #: machine check, processor IERR, CATERR, thermal trip
    MACHINE_CHECK = "machine_check"
    #: memory: ECC (correctable or not), DIMM failure, memory training
    MEMORY = "memory"
    #: PCIe: AER, PERR/SERR, bus errors
    PCIE = "pcie"
    #: power supply, power unit, AC lost, voltage
    POWER = "power"
    #: the OS stopped: kernel panic, OS critical stop, watchdog
    OS_STOP = "os_stop"
    #: the system (re)started, powered on or off
    RESTART = "restart"
    OTHER = "other"

    @property
    def hardware_error(self) -> bool:
        return self in (EntryKind.MACHINE_CHECK, EntryKind.MEMORY, EntryKind.PCIE, EntryKind.POWER)


class SourceStatus(StrEnum):
    #: read to the end (or to the window's start, on a newest-first log)
    READ = "read"
    #: oob's bounds (pages, entries, time) stopped the reading early
    TRUNCATED = "truncated"
    #: the BMC offers no such log (no LogServices, no SEL): not an error
    NOT_OFFERED = "not_offered"
    #: the BMC offers the log but oob could not read it (the reason in ``detail``)
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Window:
    """The incident window, both ends inclusive, timezone-aware (UTC)."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"Window.{name} must be timezone-aware")
        if self.since is not None and self.until is not None and self.since > self.until:
            raise ValueError("Window: since is after until")

    def holds(self, when: dt.datetime) -> bool:
        return (self.since is None or when >= self.since) and (self.until is None or when <= self.until)

    @classmethod
    def around_nmi(
        cls, nmi_at: dt.datetime, *, lead: dt.timedelta = DEFAULT_LEAD, until: dt.datetime | None = None
    ) -> Window:
        """From ``lead`` before the NMI to ``until`` (default: open-ended)."""
        return cls(nmi_at - lead, until)

    def to_dict(self) -> dict[str, object]:
        return {"since": _iso(self.since), "until": _iso(self.until)}


@dataclass(frozen=True)
class LogEntry:
    #: when the BMC says the entry was made (UTC)
    time: dt.datetime
    severity: Severity
    #: which log: "IML", "Sel", "EventLog", "SEL" (IPMI)...
    source: str
    message: str
    kind: EntryKind = EntryKind.OTHER
    message_id: str | None = None
    #: the IPMI sensor type the entry reports ("Critical Interrupt", "Memory"...)
    sensor: str | None = None
    #: the BMC's own id of the entry (Redfish ``Id``, SEL record id)
    raw_id: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "time": _iso(self.time),
            "severity": self.severity.value,
            "source": self.source,
            "message": self.message,
            "kind": self.kind.value,
            "message_id": self.message_id,
            "sensor": self.sensor,
            "raw_id": self.raw_id,
        }


@dataclass(frozen=True)
class LogSource:
    """One log oob looked at, and what came of it."""

    name: str
    status: SourceStatus
    #: entries read from it (before the window)
    seen: int = 0
    detail: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "status": self.status.value, "seen": self.seen, "detail": self.detail}


@dataclass(frozen=True)
class BmcLog:
    """The BMC's log entries in the incident window, and how they were read."""

    host: str
    method: str
    window: Window
    #: kept entries, oldest first
    entries: tuple[LogEntry, ...] = ()
    sources: tuple[LogSource, ...] = ()
    #: entries read from the BMC
    seen: int = 0
    #: entries read but outside the window
    outside: int = 0
    #: entries whose time could not be parsed (skipped, never guessed)
    bad_time: int = 0
    #: entries in the window beyond :data:`MAX_KEPT` (counted, not kept)
    dropped: int = 0

    @property
    def kept(self) -> int:
        return len(self.entries)

    @property
    def skipped(self) -> int:
        return self.bad_time

    @property
    def nmi_entries(self) -> tuple[LogEntry, ...]:
        return tuple(e for e in self.entries if e.kind is EntryKind.NMI)

    @property
    def hardware_errors(self) -> tuple[LogEntry, ...]:
        return tuple(e for e in self.entries if e.kind.hardware_error)

    @property
    def offered(self) -> bool:
        """The BMC offers at least one log."""
        return any(s.status is not SourceStatus.NOT_OFFERED for s in self.sources)

    @property
    def complete(self) -> bool:
        """Every offered log was read to the end of the window."""
        return all(s.status in (SourceStatus.READ, SourceStatus.NOT_OFFERED) for s in self.sources)

    def to_dict(self) -> dict[str, object]:
        return {
            "host": self.host,
            "method": self.method,
            "window": self.window.to_dict(),
            "seen": self.seen,
            "kept": self.kept,
            "outside": self.outside,
            "skipped_bad_time": self.bad_time,
            "dropped": self.dropped,
            "nmi_entries": len(self.nmi_entries),
            "hardware_errors": len(self.hardware_errors),
            "sources": [s.to_dict() for s in self.sources],
            "entries": [e.to_dict() for e in self.entries],
        }


# -- reading raw values ------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def bounded_text(value: object, limit: int = MAX_TEXT) -> str | None:
    """A string the BMC wrote, cut to ``limit`` characters; None for anything not text.

    Control characters stay in (escaped when shown): the record keeps what the BMC said.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value).strip()
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ISO 8601 as Redfish writes Edm.DateTimeOffset: date, T, time, optional fraction, offset
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})", re.ASCII
)


def parse_time(value: object) -> dt.datetime | None:
    """A BMC's timestamp as an aware UTC datetime, or None (unparseable, no offset, absurd).

    No offset means no way to know the zone: such an entry is skipped and counted,
    never placed at a guessed time.  Years before 2000 are a BMC whose clock was never
    set (IPMI's "pre-init" time): skipped too.
    """
    if not isinstance(value, str) or len(value) > 40:
        return None
    match = _ISO.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match[i]) for i in range(1, 7))
    fraction = (match[7] or "0")[:6].ljust(6, "0")
    zone = match[8]
    try:
        if zone == "Z":
            offset = dt.timedelta(0)
        else:
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            offset = sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        when = dt.datetime(
            year, month, day, hour, minute, second, int(fraction), tzinfo=dt.timezone(offset)
        ).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return when if when.year >= 2000 else None


def from_epoch(seconds: int) -> dt.datetime | None:
    """An IPMI SEL timestamp (seconds since 1970, UTC by the BMC's clock); None for the
    "unspecified" value and pre-init times (seconds since the BMC started)."""
    if seconds == 0xFFFFFFFF or seconds < 0x20000000:
        return None
    return dt.datetime.fromtimestamp(seconds, UTC)


_SEVERITIES: dict[str, Severity] = {
    "ok": Severity.OK,
    "informational": Severity.OK,
    "info": Severity.OK,
    "warning": Severity.WARNING,
    "caution": Severity.WARNING,
    "minor": Severity.WARNING,
    "major": Severity.CRITICAL,
    "critical": Severity.CRITICAL,
    "error": Severity.CRITICAL,
    "fatal": Severity.CRITICAL,
}


def parse_severity(*values: object) -> Severity:
    """The first of ``values`` that names a severity (``Severity``, ``MessageSeverity``...)."""
    for value in values:
        if isinstance(value, str):
            severity = _SEVERITIES.get(value.strip().lower())
            if severity is not None:
                return severity
    return Severity.UNKNOWN


# -- classification ------------------------------------------------------------------------------

#: IPMI sensor types (IPMI 2.0 table 42-3) by number, with the Redfish SensorType string
SENSOR_TYPES: dict[int, str] = {
    0x01: "Temperature",
    0x02: "Voltage",
    0x04: "Fan",
    0x05: "Physical Chassis Security",
    0x07: "Processor",
    0x08: "Power Supply / Converter",
    0x09: "PowerUnit",
    0x0C: "Memory",
    0x0F: "System Firmware Progress",
    0x10: "Event Logging Disabled",
    0x12: "System Event",
    0x13: "Critical Interrupt",
    0x14: "Button/Switch",
    0x19: "ChipSet",
    0x1D: "SystemBoot/Restart",
    0x1F: "Boot Progress",
    0x20: "OS Stop/Shutdown",
    0x23: "Watchdog",
    0x2B: "Version Change",
}

# (sensor type, offset) -> (kind, message, severity): the IPMI 2.0 generic sensor offsets
# oob cares about (table 42-3); others are kept with a generic message
_SEL_EVENTS: dict[tuple[int, int], tuple[EntryKind, str, Severity]] = {
    (0x13, 0x00): (EntryKind.NMI, "Front Panel NMI / Diagnostic Interrupt", Severity.CRITICAL),
    (0x13, 0x01): (EntryKind.PCIE, "Bus Timeout", Severity.CRITICAL),
    (0x13, 0x02): (EntryKind.PCIE, "I/O channel check NMI", Severity.CRITICAL),
    (0x13, 0x03): (EntryKind.NMI, "Software NMI", Severity.CRITICAL),
    (0x13, 0x04): (EntryKind.PCIE, "PCI PERR", Severity.CRITICAL),
    (0x13, 0x05): (EntryKind.PCIE, "PCI SERR", Severity.CRITICAL),
    (0x13, 0x07): (EntryKind.PCIE, "Bus Correctable Error", Severity.WARNING),
    (0x13, 0x08): (EntryKind.PCIE, "Bus Uncorrectable Error", Severity.CRITICAL),
    (0x13, 0x09): (EntryKind.MACHINE_CHECK, "Fatal NMI", Severity.CRITICAL),
    (0x13, 0x0A): (EntryKind.PCIE, "Bus Fatal Error", Severity.CRITICAL),
    (0x13, 0x0B): (EntryKind.PCIE, "Bus Degraded", Severity.WARNING),
    (0x07, 0x00): (EntryKind.MACHINE_CHECK, "Processor IERR", Severity.CRITICAL),
    (0x07, 0x01): (EntryKind.MACHINE_CHECK, "Processor Thermal Trip", Severity.CRITICAL),
    (0x07, 0x0B): (EntryKind.MACHINE_CHECK, "Machine Check Exception (uncorrectable)", Severity.CRITICAL),
    (0x07, 0x0C): (EntryKind.MACHINE_CHECK, "Correctable Machine Check Error", Severity.WARNING),
    (0x0C, 0x00): (EntryKind.MEMORY, "Correctable ECC", Severity.WARNING),
    (0x0C, 0x01): (EntryKind.MEMORY, "Uncorrectable ECC", Severity.CRITICAL),
    (0x0C, 0x02): (EntryKind.MEMORY, "Memory Parity Error", Severity.CRITICAL),
    (0x0C, 0x03): (EntryKind.MEMORY, "Memory Scrub Failed", Severity.CRITICAL),
    (0x0C, 0x05): (EntryKind.MEMORY, "Correctable ECC logging limit reached", Severity.WARNING),
    (0x0C, 0x08): (EntryKind.MEMORY, "Memory Spare", Severity.WARNING),
    (0x08, 0x01): (EntryKind.POWER, "Power Supply Failure detected", Severity.CRITICAL),
    (0x08, 0x03): (EntryKind.POWER, "Power Supply input lost (AC/DC)", Severity.CRITICAL),
    (0x09, 0x00): (EntryKind.RESTART, "Power Off / Power Down", Severity.OK),
    (0x09, 0x01): (EntryKind.RESTART, "Power Cycle", Severity.OK),
    (0x09, 0x02): (EntryKind.POWER, "240VA Power Down", Severity.CRITICAL),
    (0x09, 0x04): (EntryKind.POWER, "AC lost", Severity.CRITICAL),
    (0x09, 0x06): (EntryKind.POWER, "Power Unit Failure detected", Severity.CRITICAL),
    (0x1D, 0x00): (EntryKind.RESTART, "Initiated by power up", Severity.OK),
    (0x1D, 0x01): (EntryKind.RESTART, "Initiated by hard reset", Severity.OK),
    (0x1D, 0x07): (EntryKind.RESTART, "System Restart", Severity.OK),
    (0x20, 0x00): (EntryKind.OS_STOP, "Critical stop during OS load", Severity.CRITICAL),
    (0x20, 0x01): (EntryKind.OS_STOP, "Run-time critical stop (kernel panic)", Severity.CRITICAL),
    (0x23, 0x01): (EntryKind.OS_STOP, "Watchdog: hard reset", Severity.CRITICAL),
    (0x23, 0x03): (EntryKind.OS_STOP, "Watchdog: power cycle", Severity.CRITICAL),
}

_SENSOR_KINDS: dict[str, EntryKind] = {
    "processor": EntryKind.MACHINE_CHECK,
    "memory": EntryKind.MEMORY,
    "power supply / converter": EntryKind.POWER,
    "powerunit": EntryKind.POWER,
    "power unit": EntryKind.POWER,
    "os stop/shutdown": EntryKind.OS_STOP,
    "systemboot/restart": EntryKind.RESTART,
}

# last resort, on MessageId and message text: specific before general (an "uncorrectable
# machine check" on "CPU 1 memory" is a machine check first)
_TEXT_RULES: tuple[tuple[re.Pattern[str], EntryKind], ...] = (
    (re.compile(r"\bnmi\b|diagnostic interrupt|non-?maskable", re.I), EntryKind.NMI),
    (
        re.compile(r"machine.?check|\bmce\b|\bierr\b|caterr|cpu.*(internal|thermal trip)", re.I),
        EntryKind.MACHINE_CHECK,
    ),
    (re.compile(r"\becc\b|\bdimm|memory|\bmem\d", re.I), EntryKind.MEMORY),
    (
        re.compile(r"pci-?e?|\baer\b|\bperr\b|\bserr\b|bus (fatal|uncorrectable|correctable)", re.I),
        EntryKind.PCIE,
    ),
    (re.compile(r"power supply|\bpsu?\d*\b|ac (lost|power lost)|voltage|power unit", re.I), EntryKind.POWER),
    (re.compile(r"kernel panic|os (critical )?stop|watchdog|bug ?check", re.I), EntryKind.OS_STOP),
    (
        re.compile(
            r"power(ed)? (is )?(on|off|cycle|restored|removed)|turning (on|off)|reset|restart|reboot", re.I
        ),
        EntryKind.RESTART,
    ),
)


def classify(
    *,
    message: str | None = None,
    message_id: str | None = None,
    sensor: str | None = None,
    sensor_type: int | None = None,
    offset: int | None = None,
) -> EntryKind:
    """What an entry is about: the IPMI sensor type and offset when known, then the
    Redfish SensorType, then the MessageId and message text."""
    if sensor_type is not None and offset is not None and (sensor_type, offset) in _SEL_EVENTS:
        return _SEL_EVENTS[(sensor_type, offset)][0]
    if sensor is not None and sensor.strip().lower() == "critical interrupt":
        # the NMI unless the text says a bus error
        text_kind = _by_text(message) if message else None
        return text_kind if text_kind in (EntryKind.PCIE, EntryKind.MACHINE_CHECK) else EntryKind.NMI
    for text in (message_id, message):
        if text:
            kind = _by_text(text)
            if kind is not None:
                return kind
    if sensor is not None and sensor.strip().lower() in _SENSOR_KINDS:
        return _SENSOR_KINDS[sensor.strip().lower()]
    return EntryKind.OTHER


def _by_text(text: str) -> EntryKind | None:
    # MessageIds are CamelCase ("CPU0000", "MemoryECCUncorrectable"): split for the rules
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text[:MAX_TEXT])
    for pattern, kind in _TEXT_RULES:
        if pattern.search(spaced):
            return kind
    return None


def sel_event(sensor_type: int, offset: int) -> tuple[EntryKind, str, Severity]:
    """Kind, message and severity of a standard SEL event, generic when oob has no words for it."""
    known = _SEL_EVENTS.get((sensor_type, offset))
    if known is not None:
        return known
    name = SENSOR_TYPES.get(sensor_type, f"sensor type 0x{sensor_type:02x}")
    kind = _SENSOR_KINDS.get(name.lower(), EntryKind.OTHER)
    return kind, f"{name} event, offset 0x{offset:02x}", Severity.UNKNOWN


# -- collecting ----------------------------------------------------------------------------------


@dataclass
class LogCollector:
    """Gathers one BMC's entries from every log a driver reads, within the window."""

    host: str
    method: str
    window: Window
    max_kept: int = MAX_KEPT
    _entries: list[LogEntry] = field(default_factory=list)
    _sources: list[LogSource] = field(default_factory=list)
    seen: int = 0
    outside: int = 0
    bad_time: int = 0
    dropped: int = 0

    def add(self, entry: LogEntry | None) -> bool:
        """One entry read from the BMC; None for one whose time could not be parsed.

        True when it lies in the window (kept, or counted when the kept list is full).
        """
        self.seen += 1
        if entry is None:
            self.bad_time += 1
            return False
        if not self.window.holds(entry.time):
            self.outside += 1
            return False
        if len(self._entries) >= self.max_kept:
            self.dropped += 1
        else:
            self._entries.append(entry)
        return True

    def source(self, name: str, status: SourceStatus, *, seen: int = 0, detail: str | None = None) -> None:
        self._sources.append(LogSource(bounded_text(name, 80) or "?", status, seen, bounded_text(detail)))

    def result(self) -> BmcLog:
        entries = sorted(self._entries, key=lambda e: (e.time, e.source, e.raw_id or ""))
        return BmcLog(
            host=self.host,
            method=self.method,
            window=self.window,
            entries=tuple(entries),
            sources=tuple(self._sources),
            seen=self.seen,
            outside=self.outside,
            bad_time=self.bad_time,
            dropped=self.dropped,
        )


# -- showing -------------------------------------------------------------------------------------


def summary(log: BmcLog) -> str:
    """One line: what the logs say about the incident."""
    if not log.offered:
        if log.method in HYPERVISOR_KINDS:  # a VM's "BMC" is its hypervisor: say which
            return f"the hypervisor ({log.method}) keeps no event log oob reads"
        return "the BMC offers no event log"
    parts = [f"{log.kept} entr{'y' if log.kept == 1 else 'ies'} in the window (of {log.seen} read)"]
    nmi = log.nmi_entries
    if nmi:
        parts.append(f"NMI logged at {_iso(nmi[0].time)}")
    else:
        parts.append("no NMI entry")
    hardware = log.hardware_errors
    if hardware:
        kinds = sorted({e.kind.value for e in hardware})
        parts.append(f"{len(hardware)} hardware error(s): {', '.join(kinds)}")
    if log.bad_time:
        parts.append(f"{log.bad_time} with an unreadable time skipped")
    unread = [s.name for s in log.sources if s.status in (SourceStatus.UNREADABLE, SourceStatus.TRUNCATED)]
    if unread:
        parts.append(f"not fully read: {', '.join(unread)}")
    return printable("; ".join(parts))


def summary_lines(log: BmcLog, *, limit: int = 50) -> list[str]:
    """The entries as terminal-safe lines, hardware errors and the NMI marked."""
    lines = []
    for entry in log.entries[-limit:]:
        mark = "!" if entry.kind.hardware_error else "*" if entry.kind is EntryKind.NMI else " "
        sensor = f" [{entry.sensor}]" if entry.sensor else ""
        lines.append(
            printable(
                f"{mark} {_iso(entry.time)} {entry.severity.value:<8} {entry.source}: {entry.message}{sensor}"
            )
        )
    for source in log.sources:
        if source.status in (SourceStatus.UNREADABLE, SourceStatus.TRUNCATED):
            lines.append(printable(f"  ({source.name}: {source.status.value}: {source.detail or ''})"))
    return lines


def _iso(when: dt.datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def merge(logs: Iterable[BmcLog]) -> list[LogEntry]:
    """Every entry of several hosts' logs, oldest first (for a fleet-wide view)."""
    return sorted((e for log in logs for e in log.entries), key=lambda e: e.time)
