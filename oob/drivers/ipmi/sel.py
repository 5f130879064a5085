"""Reading the IPMI System Event Log with the raw SEL commands (IPMI 2.0 sections 31-32).

Why not pyghmi's ``Command.get_event_log``: it first walks the whole SDR repository (a
slow read of every sensor record on a real BMC, for names oob does not need), follows
the BMC's "next record" ids without any bound (a BMC whose chain loops keeps it busy
forever), and turns times into local-time strings.  oob sends the four read-only
commands itself, through :meth:`IpmiClient.read` (reads may be repeated safely):

* Get SEL Info: how many entries, and whether the SEL is there at all (an answer
  0xC1/0xCB/0xD4... means "not offered", not an error);
* Reserve SEL, when the BMC supports it, so a partial read is not refused;
* Get SEL Entry from 0x0000 following the next-record ids, at most :data:`MAX_ENTRIES`
  records, a repeated id ends the walk (a loop), all within a time budget;
* Get SEL Time: the BMC's clock now.  SEL timestamps are the BMC's clock; when that
  clock is off from ours by more than :data:`CLOCK_SKEW_WARN`, the entries are moved
  by the difference (and a warning says so), so that the incident window still means
  the same moments.  Pre-init timestamps (seconds since the BMC started) are skipped
  and counted, as unreadable times are on Redfish.
"""

from __future__ import annotations

import datetime as dt
import struct
import time

from oob.drivers.ipmi.client import IpmiClient
from oob.drivers.ipmi.codes import completion_name
from oob.errors import OobError
from oob.signals.bmclog import (
    SENSOR_TYPES,
    EntryKind,
    LogCollector,
    LogEntry,
    Severity,
    SourceStatus,
    from_epoch,
    sel_event,
)

NETFN_STORAGE = 0x0A
CMD_GET_SEL_INFO = 0x40
CMD_RESERVE_SEL = 0x42
CMD_GET_SEL_ENTRY = 0x43
CMD_GET_SEL_TIME = 0x48

#: records read at most (a full SEL holds a few thousand at most)
MAX_ENTRIES = 4096
#: seconds the whole SEL may take to read
TIME_BUDGET = 60.0
#: a BMC clock this far from ours is corrected for (and said)
CLOCK_SKEW_WARN = dt.timedelta(minutes=2)
SOURCE = "SEL"

_LAST = 0xFFFF


def read_sel(client: IpmiClient, collector: LogCollector, *, budget: float = TIME_BUDGET) -> list[str]:
    """Read the SEL into ``collector``; returns warnings (clock skew)."""
    warnings: list[str] = []
    deadline = time.monotonic() + budget
    try:
        info = client.read(NETFN_STORAGE, CMD_GET_SEL_INFO, what="Get SEL Info")
    except OobError as exc:
        collector.source(SOURCE, SourceStatus.UNREADABLE, detail=exc.message)
        return warnings
    if info.code != 0 or len(info.data) < 14:
        detail = completion_name(info.code) if info.code else "a short Get SEL Info answer"
        collector.source(
            SOURCE, SourceStatus.NOT_OFFERED, detail=f"the BMC answered Get SEL Info with {detail}"
        )
        return warnings
    count = struct.unpack_from("<H", info.data, 1)[0]
    if count == 0:
        collector.source(SOURCE, SourceStatus.READ, detail="the SEL is empty")
        return warnings
    reservation = 0
    if info.data[13] & 0x02:
        try:
            reply = client.read(NETFN_STORAGE, CMD_RESERVE_SEL, what="Reserve SEL")
            if reply.code == 0 and len(reply.data) >= 2:
                reservation = struct.unpack_from("<H", reply.data)[0]
        except OobError:
            reservation = 0  # full-record reads need no reservation
    skew = _clock_skew(client)
    if skew is not None and abs(skew) > CLOCK_SKEW_WARN:
        warnings.append(
            f"the BMC's clock is {abs(skew.total_seconds()):.0f} s {'behind' if skew < dt.timedelta(0) else 'ahead of'} "
            "this machine's; SEL times are corrected by that much"
        )
    else:
        skew = None
    seen: set[int] = set()
    record_id = 0x0000
    read = 0
    while record_id != _LAST:
        if read >= MAX_ENTRIES:
            collector.source(
                SOURCE, SourceStatus.TRUNCATED, seen=read, detail=f"more than {MAX_ENTRIES} records"
            )
            return warnings
        if time.monotonic() > deadline:
            collector.source(SOURCE, SourceStatus.TRUNCATED, seen=read, detail="time budget spent")
            return warnings
        if record_id in seen:
            collector.source(SOURCE, SourceStatus.TRUNCATED, seen=read, detail="the BMC's record chain loops")
            return warnings
        seen.add(record_id)
        data = struct.pack("<HHBB", reservation, record_id, 0, 0xFF)
        try:
            reply = client.read(NETFN_STORAGE, CMD_GET_SEL_ENTRY, tuple(data), what="Get SEL Entry")
        except OobError as exc:
            collector.source(SOURCE, SourceStatus.UNREADABLE, seen=read, detail=exc.message)
            return warnings
        if reply.code == 0xCB and read > 0:
            break  # the record vanished (the SEL wrapped while reading): what was read stands
        if reply.code != 0 or len(reply.data) < 2 + 16:
            detail = completion_name(reply.code) if reply.code else "a short record"
            status = SourceStatus.UNREADABLE if read == 0 else SourceStatus.TRUNCATED
            collector.source(SOURCE, status, seen=read, detail=f"Get SEL Entry answered {detail}")
            return warnings
        next_id = struct.unpack_from("<H", reply.data)[0]
        read += 1
        collector.add(entry_from_sel(reply.data[2:18], skew))
        record_id = next_id
    collector.source(SOURCE, SourceStatus.READ, seen=read)
    return warnings


def _clock_skew(client: IpmiClient) -> dt.timedelta | None:
    """The BMC's clock minus ours, None when the BMC does not say (or was never set)."""
    try:
        reply = client.read(NETFN_STORAGE, CMD_GET_SEL_TIME, what="Get SEL Time")
    except OobError:
        return None
    if reply.code != 0 or len(reply.data) < 4:
        return None
    bmc_now = from_epoch(struct.unpack_from("<I", reply.data)[0])
    if bmc_now is None:
        return None
    return bmc_now - dt.datetime.now(dt.UTC)


def entry_from_sel(record: bytes, skew: dt.timedelta | None = None) -> LogEntry | None:
    """A LogEntry from a 16-byte SEL record; None when it carries no usable time.

    Standard records (type 0x02) are decoded; OEM timestamped records (0xC0-0xDF) keep
    their time with an "OEM record" message; non-timestamped OEM records (0xE0-0xFF) have
    no time and are skipped (counted)."""
    if len(record) < 16:
        return None
    record_id, record_type, stamp = struct.unpack_from("<HBI", record)
    if record_type >= 0xE0:
        return None
    when = from_epoch(stamp)
    if when is None:
        return None
    if skew is not None:
        when -= skew
    if record_type != 0x02:
        return LogEntry(
            time=when,
            severity=Severity.UNKNOWN,
            source=SOURCE,
            message=f"OEM record type 0x{record_type:02x}: {record[10:16].hex()}",
            kind=EntryKind.OTHER,
            raw_id=f"0x{record_id:04x}",
        )
    sensor_type, sensor_number, event_dir_type, data1 = record[10], record[11], record[12], record[13]
    offset = data1 & 0x0F
    kind, message, severity = sel_event(sensor_type, offset)
    deasserted = bool(event_dir_type & 0x80)
    if deasserted:
        message += " (deasserted)"
        if kind is not EntryKind.NMI:
            severity = Severity.OK
    if event_dir_type & 0x7F != 0x6F:
        # not sensor-specific: the offset means a threshold or a generic state, not the table above
        kind = EntryKind.OTHER
        name = SENSOR_TYPES.get(sensor_type, f"sensor type 0x{sensor_type:02x}")
        message = f"{name} event type 0x{event_dir_type & 0x7F:02x}, offset 0x{offset:02x}"
        severity = Severity.UNKNOWN
    return LogEntry(
        time=when,
        severity=severity,
        source=SOURCE,
        message=message + f" (sensor #0x{sensor_number:02x})",
        kind=kind,
        sensor=SENSOR_TYPES.get(sensor_type),
        raw_id=f"0x{record_id:04x}",
    )
