"""The mock IPMI BMC's System Event Log: the SEL commands of IPMI 2.0 section 31.

The records come from the host's :class:`mocks.bmc_logs.EventLog` (the same log the
Redfish LogServices show), as standard 16-byte SEL records (type 0x02, section 32.1):
an NMI is sensor type 0x13 "Critical Interrupt", offset 0x00 "Front Panel NMI /
Diagnostic Interrupt"; a machine check 0x07/0x0B; an uncorrectable ECC error 0x0C/0x01;
a PCI SERR 0x13/0x05; a failed power supply 0x08/0x01; power and resets 0x09 and 0x1D.

Commands (NetFn Storage 0x0A): Get SEL Info (0x40), Reserve SEL (0x42), Get SEL Entry
(0x43, whole or partial records, 0x0000 first and 0xFFFF last), Get SEL Time (0x48).
Clear SEL and Add SEL Entry are not offered (0xC1): oob never changes a BMC's log, and
the log is shared with Redfish.  The mock has no SDR repository, so the sensor numbers
name no sensor (ipmitool prints "#0x.."; FreeIPMI needs ``--ignore-sdr-cache``).
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from .bmc_logs import EventLog, MockEvent, Record

NETFN_STORAGE = 0x0A
GET_SEL_INFO = 0x40
RESERVE_SEL = 0x42
GET_SEL_ENTRY = 0x43
GET_SEL_TIME = 0x48

CC_INVALID_COMMAND = 0xC1
CC_RESERVATION_CANCELLED = 0xC5
CC_REQUEST_DATA_LENGTH_INVALID = 0xC7
CC_NOT_PRESENT = 0xCB
CC_INVALID_DATA_FIELD = 0xCC

#: generator id of the BMC itself (slave address 0x20, LUN 0)
BMC_GENERATOR = 0x0020
#: event type "sensor-specific", assertion
SENSOR_SPECIFIC = 0x6F

#: event -> (sensor type, sensor number, offset)
SEL_CODES: dict[MockEvent, tuple[int, int, int]] = {
    MockEvent.NMI: (0x13, 0x01, 0x00),
    MockEvent.POWER_ON: (0x1D, 0x02, 0x00),
    MockEvent.POWER_OFF: (0x09, 0x03, 0x00),
    MockEvent.RESTART: (0x1D, 0x02, 0x01),
    MockEvent.MACHINE_CHECK: (0x07, 0x10, 0x0B),
    MockEvent.MEMORY_ECC: (0x0C, 0x20, 0x01),
    MockEvent.PCIE: (0x13, 0x01, 0x05),
    MockEvent.PSU: (0x08, 0x30, 0x01),
}


def sel_record(record: Record) -> bytes:
    """The 16-byte standard SEL record of one event."""
    sensor_type, sensor_number, offset = SEL_CODES[record.event]
    return struct.pack(
        "<HBIHBBBBBBB",
        record.id & 0xFFFF,
        0x02,
        int(record.at) & 0xFFFFFFFF,
        BMC_GENERATOR,
        0x04,  # IPMI 2.0 event message revision
        sensor_type,
        sensor_number,
        SENSOR_SPECIFIC,
        offset,  # event data 1: offset only, data 2 and 3 unspecified
        0xFF,
        0xFF,
    )


class SelResponder:
    """Answers the SEL commands of one BMC from its event log."""

    def __init__(self, log: EventLog, *, wall: Callable[[], float] = time.time) -> None:
        self.log = log
        self._wall = wall
        self._lock = threading.Lock()
        self._reservation = 0

    def handles(self, netfn: int, command: int) -> bool:
        return netfn == NETFN_STORAGE and command in (GET_SEL_INFO, RESERVE_SEL, GET_SEL_ENTRY, GET_SEL_TIME)

    def respond(self, command: int, data: bytes, session: Any) -> None:
        code, payload = self.answer(command, data)
        session.send_ipmi_response(code=code, data=list(payload))

    def answer(self, command: int, data: bytes) -> tuple[int, bytes]:
        """(completion code, response data) for one request."""
        records = [r for r in self.log.records() if 0 < r.id < 0xFFFF]
        if command == GET_SEL_INFO:
            newest = int(records[-1].at) if records else 0xFFFFFFFF
            free = max(0, (512 - len(records)) * 16)
            return 0, struct.pack("<BHHIIB", 0x51, len(records), min(free, 0xFFFF), newest, 0xFFFFFFFF, 0x02)
        if command == RESERVE_SEL:
            with self._lock:
                self._reservation = self._reservation % 0xFFFF + 1
                return 0, struct.pack("<H", self._reservation)
        if command == GET_SEL_TIME:
            return 0, struct.pack("<I", int(self._wall()) & 0xFFFFFFFF)
        if command == GET_SEL_ENTRY:
            return self._entry(records, data)
        return CC_INVALID_COMMAND, b""

    def _entry(self, records: list[Record], data: bytes) -> tuple[int, bytes]:
        if len(data) != 6:
            return CC_REQUEST_DATA_LENGTH_INVALID, b""
        reservation, wanted, offset, length = struct.unpack("<HHBB", data)
        with self._lock:
            current = self._reservation
        # a partial read must carry the current reservation (section 31.5)
        if offset != 0 and reservation != current:
            return CC_RESERVATION_CANCELLED, b""
        if not records:
            return CC_NOT_PRESENT, b""
        if wanted == 0x0000:
            index = 0
        elif wanted == 0xFFFF:
            index = len(records) - 1
        else:
            index = next((i for i, r in enumerate(records) if r.id == wanted), -1)
            if index < 0:
                return CC_NOT_PRESENT, b""
        if offset > 16:
            return CC_INVALID_DATA_FIELD, b""
        raw = sel_record(records[index])
        chunk = raw[offset:] if length == 0xFF else raw[offset : offset + length]
        next_id = records[index + 1].id if index + 1 < len(records) else 0xFFFF
        return 0, struct.pack("<H", next_id) + chunk
