"""The mock BMC's own event log, and how each vendor's Redfish service shows it.

One :class:`EventLog` per simulated host (:func:`event_log_for`), shared by the host's
Redfish service and its IPMI endpoint (:mod:`mocks.ipmi_sel`), so an NMI sent through
either protocol shows in both.  The log watches the host: an NMI adds a "diagnostic
interrupt" entry, power changes add power entries; :meth:`EventLog.inject` adds the
hardware faults a real BMC records (machine check, uncorrectable ECC, PCIe SERR, a
failed power supply) — tests call it (the fleet's fault API could, see README).  A few older
entries (days before the fleet started) are seeded, so that reading a window has
something to leave out.

Redfish: :data:`LAYOUTS` says, per flavour family, which LogServices hang under the
system and the manager, their Ids and entry style, in what order the vendor lists
entries and how it pages them.  Sources, and what is assumed (the captures link to
LogServices but hold none, so shapes follow DMTF's LogEntry schema and vendor documents):

* iLO 5: IML under ``Systems/1`` and IEL under ``Managers/1`` (HPE, "Log services" in the
  iLO Redfish documentation); newest first and ``?page=N`` paging are assumed.
  IML texts ("User Initiated NMI Switch", "Uncorrectable Machine Check Exception ...")
  follow iLO IML wording as remembered; assumed.
* iDRAC 9: ``Sel`` and ``Lclog`` under ``Managers/iDRAC.Embedded.1`` (Dell's Redfish
  API guide names both); newest first assumed; message ids MEM0001, PCI1320, SYS1000/1001/1003
  from Dell's message registry as remembered; the NMI entry's text is assumed.
* OpenBMC bmcweb: ``EventLog`` under ``Systems/system``, oldest first, ``$skip`` paging
  and ``TopSkipQuery`` (bmcweb); MessageIds ``OpenBMC.0.1.NMIDiagnosticInterrupt``,
  ``CPUError``, ``MemoryECCUncorrectable``, ``LegacyPCISERR``, ``DCPowerOn``/``DCPowerOff``
  and their texts from bmcweb's OpenBMC message registry; ``PowerSupplyFailed`` assumed.
* Supermicro: ``Log1`` under ``Systems/1`` (SEL-style entries); assumed.
* Lenovo XCC: ``PlatformLog`` under ``Systems/1`` (the manager links the same collection, as
  captured); newest first and the texts assumed.
* AMI MegaRAC: ``SEL`` under ``Managers/Self``; assumed.
* DMTF public-rackmount1: ``Log1`` under the system, as DMTF's mockup has it.
* Cray EX and Intel: no LogServices served (oob must say "not offered").
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import weakref
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from .flavours import Flavour

Json = dict[str, Any]

#: entries a log keeps; the oldest go first (a full SEL wraps or stops: the mock wraps)
MAX_EVENTS = 512
#: older entries seeded per host
SEED_EVENTS = 12
UTC = dt.UTC


class MockEvent(StrEnum):
    NMI = "nmi"
    POWER_ON = "power_on"
    POWER_OFF = "power_off"
    RESTART = "restart"
    MACHINE_CHECK = "machine_check"
    MEMORY_ECC = "memory_ecc"
    PCIE = "pcie"
    PSU = "psu"


#: what ``hardware_error`` faults may name
HARDWARE_ERRORS: tuple[str, ...] = ("machine_check", "memory_ecc", "pcie", "psu")


@dataclass(frozen=True)
class Record:
    #: the BMC's record id (1, 2, 3...; never reused)
    id: int
    #: wall-clock seconds since 1970
    at: float
    event: MockEvent


class EventLog:
    """The records of one BMC, thread safe; entries only ever added (and wrapped)."""

    def __init__(self, name: str, *, wall: Callable[[], float] = time.time, seed: bool = True) -> None:
        self.name = name
        self._wall = wall
        self._lock = threading.Lock()
        self._records: list[Record] = []
        self._next_id = 1
        if seed:
            self._seed()

    def _seed(self) -> None:
        # days before now, one a few hours apart, the same for a name: restarts and power
        now = self._wall()
        start = now - 3 * 86_400 - zlib.crc32(self.name.encode()) % 3600
        cycle = (MockEvent.POWER_OFF, MockEvent.POWER_ON, MockEvent.RESTART)
        for index in range(SEED_EVENTS):
            self._append(start + index * 5 * 3600, cycle[index % len(cycle)])

    def _append(self, at: float, event: MockEvent) -> Record:
        record = Record(self._next_id, at, event)
        self._next_id += 1
        self._records.append(record)
        del self._records[:-MAX_EVENTS]
        return record

    def add(self, event: MockEvent | str, at: float | None = None) -> Record:
        with self._lock:
            return self._append(self._wall() if at is None else at, MockEvent(event))

    def inject(self, kind: str) -> Record:
        """A hardware fault the BMC saw (``machine_check``, ``memory_ecc``, ``pcie``, ``psu``)."""
        if kind not in HARDWARE_ERRORS:
            raise ValueError(f"unknown hardware error {kind!r}; known: {', '.join(HARDWARE_ERRORS)}")
        return self.add(kind)

    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def watch_host(self, host: Any) -> None:
        """Record what happens to ``host`` (a :class:`mocks.host.SimulatedHost`)."""
        host.watch(self._on_host_event)

    def _on_host_event(self, _host: Any, record: Any) -> None:
        event = _HOST_EVENTS.get(str(record.event))
        if event is MockEvent.NMI or (event is not None and record.before != record.after):
            self.add(event)


_HOST_EVENTS: dict[str, MockEvent] = {
    "nmi": MockEvent.NMI,
    "power_on": MockEvent.POWER_ON,
    "power_off": MockEvent.POWER_OFF,
    "restart": MockEvent.RESTART,
}

# by id: a SimulatedHost is a dataclass with eq, so unhashable; a weak reference lets a
# stopped fleet's hosts (and their logs) go
_logs: dict[int, tuple[weakref.ref[Any], EventLog]] = {}
_logs_lock = threading.Lock()


def event_log_for(host: Any) -> EventLog:
    """The one log of ``host``, made (and set watching it) on first use."""
    with _logs_lock:
        known = _logs.get(id(host))
        if known is not None and known[0]() is host:
            return known[1]
        for key in [k for k, (ref, _) in _logs.items() if ref() is None]:
            del _logs[key]
        log = EventLog(str(getattr(host, "name", "host")))
        if hasattr(host, "watch"):
            log.watch_host(host)
        _logs[id(host)] = (weakref.ref(host), log)
        return log


# -- the words each vendor writes -------------------------------------------------------------

#: event -> (message, severity, IPMI sensor type name)
_GENERIC: dict[MockEvent, tuple[str, str, str]] = {
    MockEvent.NMI: ("NMI Diagnostic Interrupt.", "Critical", "Critical Interrupt"),
    MockEvent.POWER_ON: ("Host system DC power is on", "OK", "SystemBoot/Restart"),
    MockEvent.POWER_OFF: ("Host system DC power is off", "OK", "PowerUnit"),
    MockEvent.RESTART: ("System restart: initiated by hard reset", "OK", "SystemBoot/Restart"),
    MockEvent.MACHINE_CHECK: (
        "CPU Error Occurred: Machine Check Exception (uncorrectable).",
        "Critical",
        "Processor",
    ),
    MockEvent.MEMORY_ECC: (
        "Memory ECC uncorrectable error. Socket=1 Channel=A DIMM=1 Rank=0.",
        "Critical",
        "Memory",
    ),
    MockEvent.PCIE: ("Legacy PCI SERR. Bus=59 Device=0 Function=0.", "Critical", "Critical Interrupt"),
    MockEvent.PSU: ("Power supply PSU1 failed.", "Critical", "Power Supply / Converter"),
}

_OPENBMC_IDS: dict[MockEvent, str] = {
    MockEvent.NMI: "OpenBMC.0.1.NMIDiagnosticInterrupt",
    MockEvent.POWER_ON: "OpenBMC.0.1.DCPowerOn",
    MockEvent.POWER_OFF: "OpenBMC.0.1.DCPowerOff",
    MockEvent.RESTART: "OpenBMC.0.1.DCPowerOn",
    MockEvent.MACHINE_CHECK: "OpenBMC.0.1.CPUError",
    MockEvent.MEMORY_ECC: "OpenBMC.0.1.MemoryECCUncorrectable",
    MockEvent.PCIE: "OpenBMC.0.1.LegacyPCISERR",
    MockEvent.PSU: "OpenBMC.0.1.PowerSupplyFailed",
}

_ILO_IML: dict[MockEvent, str] = {
    MockEvent.NMI: "User Initiated NMI Switch",
    MockEvent.POWER_ON: "Server power restored.",
    MockEvent.POWER_OFF: "Server power removed.",
    MockEvent.RESTART: "Server reset.",
    MockEvent.MACHINE_CHECK: (
        "Uncorrectable Machine Check Exception (Board 1, Processor 1, APIC ID 0x00000000, Bank 0x00000004, "
        "Status 0xB2000000'00070F0F)"
    ),
    MockEvent.MEMORY_ECC: "Uncorrectable Memory Error detected (Processor 1, Memory Module 1)",
    MockEvent.PCIE: "Uncorrectable PCI Express Error (Slot 1, Bus 59, Device 0, Function 0)",
    MockEvent.PSU: "Power Supply Failure (Power Supply 1)",
}

_IDRAC: dict[MockEvent, tuple[str | None, str]] = {
    MockEvent.NMI: (None, "A non-maskable interrupt (NMI) was generated by the iDRAC."),
    MockEvent.POWER_ON: ("SYS1000", "System is turning on."),
    MockEvent.POWER_OFF: ("SYS1001", "System is turning off."),
    MockEvent.RESTART: ("SYS1003", "System CPU Resetting."),
    MockEvent.MACHINE_CHECK: ("CPU0000", "Internal error has occurred check for additional logs."),
    MockEvent.MEMORY_ECC: (
        "MEM0001",
        "Multi-bit memory errors detected on a memory device at location(s) DIMM_A1.",
    ),
    MockEvent.PCIE: (
        "PCI1320",
        "A bus fatal error was detected on a component at bus 59 device 0 function 0.",
    ),
    MockEvent.PSU: ("PSU0003", "The power input for power supply 1 is lost."),
}

#: events a manager-side log keeps (the BMC's own view: power and resets)
_BMC_SIDE = frozenset({MockEvent.POWER_ON, MockEvent.POWER_OFF, MockEvent.RESTART, MockEvent.NMI})

EntryStyle = Literal["ilo", "idrac-sel", "idrac-lc", "openbmc", "sel", "event"]
Order = Literal["newest", "oldest"]
Paging = Literal["skip", "page"]


@dataclass(frozen=True)
class LogServiceDef:
    owner: Literal["system", "manager"]
    id: str
    name: str
    description: str
    entry_style: EntryStyle
    #: ``LogEntryType`` of the service
    entry_type: str = "Event"
    order: Order = "oldest"
    paging: Paging = "skip"
    page_size: int = 5
    #: only these events (None: all)
    events: frozenset[MockEvent] | None = None
    #: the offset Created carries (iDRAC writes the BMC's local offset)
    offset: dt.timedelta = dt.timedelta(0)


#: flavour family -> its LogServices
LAYOUTS: dict[str, tuple[LogServiceDef, ...]] = {
    "ilo": (
        LogServiceDef(
            "system",
            "IML",
            "Integrated Management Log",
            "Integrated Management Log",
            "ilo",
            "Multiple",
            order="newest",
            paging="page",
        ),
        LogServiceDef(
            "manager",
            "IEL",
            "iLO Event Log",
            "iLO Event Log",
            "ilo",
            "Multiple",
            order="newest",
            paging="page",
            events=_BMC_SIDE - {MockEvent.NMI},
        ),
    ),
    "idrac": (
        LogServiceDef(
            "manager",
            "Sel",
            "SEL Log Service",
            "SEL Log Service",
            "idrac-sel",
            "SEL",
            order="newest",
            offset=dt.timedelta(hours=-6),
        ),
        LogServiceDef(
            "manager",
            "Lclog",
            "Lifecycle Controller Log Service",
            "Lifecycle Controller Log Service",
            "idrac-lc",
            "Event",
            order="newest",
            offset=dt.timedelta(hours=-6),
            events=_BMC_SIDE - {MockEvent.NMI},
        ),
    ),
    "openbmc": (
        LogServiceDef("system", "EventLog", "Event Log Service", "System Event Log Service", "openbmc"),
    ),
    "supermicro": (LogServiceDef("system", "Log1", "Log Service", "Log Service", "sel", "SEL"),),
    "xcc": (
        LogServiceDef(
            "system",
            "PlatformLog",
            "Platform Event Log",
            "This resource is used to represent a platform log.",
            "event",
            "Event",
            order="newest",
        ),
    ),
    "ami": (LogServiceDef("manager", "SEL", "SEL Log", "IPMI SEL Log", "sel", "SEL"),),
    "dmtf": (
        LogServiceDef("system", "Log1", "System Log Service", "This log contains entries", "sel", "SEL"),
    ),
}

_FAMILIES: dict[str, str] = {
    "ilo5": "ilo",
    "ilo5-slash": "ilo",
    "idrac9": "idrac",
    "idrac9-old": "idrac",
    "openbmc": "openbmc",
    "supermicro": "supermicro",
    "supermicro-x12": "supermicro",
    "xcc": "xcc",
    "ami": "ami",
    "dmtf": "dmtf",
}


def layout_for(flavour: Flavour) -> tuple[LogServiceDef, ...]:
    return LAYOUTS.get(_FAMILIES.get(flavour.name, ""), ())


# -- the static resources (added to the flavour's model before it is pruned) --------------------


def add_log_resources(
    flavour: Flavour, resources: dict[str, Json], key: Callable[[str], str], system_key: str, context: bool
) -> None:
    """LogServices collections and LogService resources, with an empty Entries collection
    each (rendered live by :class:`RedfishLogs`), under the system and the first manager."""
    layout = layout_for(flavour)
    if not layout:
        return
    system = resources[system_key]
    owners: dict[str, Json] = {"system": system}
    managed = system.get("Links", {}).get("ManagedBy") or []
    manager_uri = managed[0].get("@odata.id") if managed and isinstance(managed[0], dict) else None
    if isinstance(manager_uri, str) and key(manager_uri) in resources:
        owners["manager"] = resources[key(manager_uri)]
    for owner_name, owner in owners.items():
        services = [d for d in layout if d.owner == owner_name]
        if not services:
            continue
        base = str(owner["@odata.id"]).rstrip("/")
        link = (
            owner.get("LogServices", {}).get("@odata.id")
            if isinstance(owner.get("LogServices"), dict)
            else None
        )
        collection_uri = link if isinstance(link, str) else f"{base}/LogServices"
        owner["LogServices"] = {"@odata.id": collection_uri}
        collection_base = collection_uri.rstrip("/")
        members = []
        for service in services:
            uri = f"{collection_base}/{service.id}"
            members.append({"@odata.id": uri})
            resources[key(uri)] = _log_service(service, uri, context)
            entries_uri = f"{uri}/Entries"
            resources[key(entries_uri)] = _collection(
                entries_uri, "LogEntryCollection", f"{service.name} Entries", [], context
            )
        existing = resources.get(key(collection_uri))
        if existing is not None:
            known = {m.get("@odata.id") for m in existing.get("Members", [])}
            existing.setdefault("Members", []).extend(m for m in members if m["@odata.id"] not in known)
            existing["Members@odata.count"] = len(existing["Members"])
        else:
            resources[key(collection_uri)] = _collection(
                collection_uri, "LogServiceCollection", "Log Service Collection", members, context
            )


def _collection(uri: str, kind: str, name: str, members: list[Json], context: bool) -> Json:
    resource: Json = {
        "@odata.id": uri,
        "@odata.type": f"#{kind}.{kind}",
        "Name": name,
        "Members": members,
        "Members@odata.count": len(members),
    }
    if context:
        resource["@odata.context"] = f"/redfish/v1/$metadata#{kind}.{kind}"
    return resource


def _log_service(service: LogServiceDef, uri: str, context: bool) -> Json:
    resource: Json = {
        "@odata.id": uri,
        "@odata.type": "#LogService.v1_2_0.LogService",
        "Id": service.id,
        "Name": service.name,
        "Description": service.description,
        "MaxNumberOfRecords": MAX_EVENTS,
        "OverWritePolicy": "WrapsWhenFull",
        "ServiceEnabled": True,
        "LogEntryType": service.entry_type,
        "Status": {"State": "Enabled", "Health": "OK"},
        "Entries": {"@odata.id": f"{uri}/Entries"},
    }
    if context:
        resource["@odata.context"] = "/redfish/v1/$metadata#LogService.LogService"
    return resource


# -- live rendering --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Served:
    service: LogServiceDef
    #: the Entries collection's URI as the model writes it
    entries_uri: str


class RedfishLogs:
    """Renders the Entries collections and entries of one flavour from an :class:`EventLog`."""

    def __init__(
        self, flavour: Flavour, resources: dict[str, Json] | Any, key: Callable[[str], str], log: EventLog
    ) -> None:
        self._key = key
        self.log = log
        self._by_entries: dict[str, _Served] = {}
        layout = {d.id: d for d in layout_for(flavour)}
        for resource in resources.values():
            if (
                not str(resource.get("@odata.type", "")).startswith("#LogService.")
                or resource.get("Id") not in layout
            ):
                continue
            entries = resource.get("Entries", {}).get("@odata.id")
            if isinstance(entries, str):
                self._by_entries[key(entries)] = _Served(layout[resource["Id"]], entries.rstrip("/"))

    def handles(self, key: str) -> bool:
        return key in self._by_entries or self._member(key) is not None

    def _member(self, key: str) -> tuple[_Served, str] | None:
        parent, _, entry_id = key.rpartition("/")
        served = self._by_entries.get(parent)
        return (served, entry_id) if served is not None and entry_id else None

    def _records(self, served: _Served) -> list[Record]:
        wanted = served.service.events
        records = [r for r in self.log.records() if wanted is None or r.event in wanted]
        return records[::-1] if served.service.order == "newest" else records

    def render(self, key: str, query: str) -> Json | None:
        """The document for ``key`` (an Entries collection, with its paging ``query``, or
        one entry), None when there is no such entry."""
        served = self._by_entries.get(key)
        if served is not None:
            return self._page(served, query)
        member = self._member(key)
        if member is None:
            return None
        served, entry_id = member
        for record in self._records(served):
            if str(record.id) == entry_id:
                return entry_document(served.service, served.entries_uri, record)
        return None

    def _page(self, served: _Served, query: str) -> Json:
        records = self._records(served)
        service = served.service
        params = dict(p.partition("=")[::2] for p in query.split("&") if p)
        size = service.page_size
        top = params.get("$top", "")
        if top.isdigit() and 0 < int(top) < size:
            size = int(top)
        if service.paging == "page":
            page = int(params["page"]) if params.get("page", "").isdigit() and int(params["page"]) > 0 else 1
            start = (page - 1) * size
        else:
            skip = params.get("$skip", "")
            start = int(skip) if skip.isdigit() else 0
        chunk = records[start : start + size]
        document: Json = {
            "@odata.id": served.entries_uri,
            "@odata.type": "#LogEntryCollection.LogEntryCollection",
            "Name": f"{service.name} Entries",
            "Description": f"Collection of entries of the {service.name}",
            "Members": [entry_document(service, served.entries_uri, r) for r in chunk],
            "Members@odata.count": len(records),
        }
        if start + size < len(records):
            if service.paging == "page":
                document["Members@odata.nextLink"] = f"{served.entries_uri}?page={start // size + 2}"
            else:
                document["Members@odata.nextLink"] = f"{served.entries_uri}?$skip={start + size}"
        return document


def _created(service: LogServiceDef, at: float) -> str:
    when = dt.datetime.fromtimestamp(int(at), UTC).astimezone(dt.timezone(service.offset))
    return when.isoformat(timespec="seconds").replace(
        "+00:00", "Z" if service.entry_style == "ilo" else "+00:00"
    )


def entry_document(service: LogServiceDef, entries_uri: str, record: Record) -> Json:
    """One Redfish LogEntry in the vendor's style."""
    message, severity, sensor = _GENERIC[record.event]
    entry: Json = {
        "@odata.id": f"{entries_uri}/{record.id}",
        "@odata.type": "#LogEntry.v1_4_0.LogEntry",
        "Id": str(record.id),
        "Name": "Log Entry",
        "Created": _created(service, record.at),
        "EntryType": "Event",
        "Severity": severity,
        "Message": message,
    }
    style = service.entry_style
    if style == "ilo":
        entry.update(
            Name=service.name,
            EntryType="Oem",
            OemRecordFormat="Hpe-IML" if service.id == "IML" else "Hpe-iLOEventLog",
            Message=_ILO_IML[record.event],
        )
    elif style in ("idrac-sel", "idrac-lc"):
        message_id, text = _IDRAC[record.event]
        entry.update(Name=f"Log Entry {record.id}", Message=text)
        if style == "idrac-sel":
            entry.update(EntryType="SEL", SensorType=sensor, EntryCode="Assert", SensorNumber=record.id % 200)
        if message_id is not None:
            entry["MessageId"] = message_id
    elif style == "openbmc":
        entry.update(Name="System Event Log Entry", MessageId=_OPENBMC_IDS[record.event], MessageArgs=[])
    elif style == "sel":
        entry.update(
            EntryType="SEL",
            SensorType=sensor,
            EntryCode="Assert",
            SensorNumber=record.id % 200,
            Message=f"[{sensor}] {message} - Asserted",
        )
    return entry
