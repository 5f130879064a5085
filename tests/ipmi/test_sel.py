"""The IPMI SEL: the mock BMC logs the NMI (and hardware errors) in its SEL; oob reads it with
the raw SEL commands, filtered to the incident window; ipmitool and FreeIPMI read the same SEL.
A hostile SEL (a looping record chain, pre-init times, a clock far off, no SEL) is bounded,
counted and said, never raised."""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from mocks.bmc_logs import SEED_EVENTS, MockEvent, Record, event_log_for
from mocks.ipmi_sel import (
    CC_INVALID_COMMAND,
    CC_NOT_PRESENT,
    CC_RESERVATION_CANCELLED,
    GET_SEL_ENTRY,
    GET_SEL_INFO,
    GET_SEL_TIME,
    RESERVE_SEL,
    SelResponder,
    sel_record,
)
from mocks.ipmi_server import IpmiBmc
from oob.drivers.ipmi.sel import entry_from_sel
from oob.signals.bmclog import EntryKind, Severity, SourceStatus
from tests.ipmi.conftest import driver_for, freeipmi, ipmitool, session_closed, wait_until


def _since() -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)


def test_oob_reads_the_nmi_and_a_hardware_error_in_the_window(add_bmc: Callable[..., IpmiBmc]) -> None:
    bmc = add_bmc()
    since = _since()
    with driver_for(bmc) as driver:
        driver.send_nmi()
        event_log_for(bmc.host).inject("memory_ecc")
        log = driver.read_event_log(since)
    assert log.method == "ipmi" and log.host == bmc.name
    assert [s.status for s in log.sources] == [SourceStatus.READ]
    assert log.seen == SEED_EVENTS + 2 and log.outside == SEED_EVENTS and log.bad_time == 0
    (nmi,) = log.nmi_entries
    assert nmi.sensor == "Critical Interrupt" and nmi.severity is Severity.CRITICAL
    assert "Diagnostic Interrupt" in nmi.message
    assert [e.kind for e in log.hardware_errors] == [EntryKind.MEMORY]
    assert wait_until(lambda: session_closed(bmc))


def test_ipmitool_lists_the_nmi_in_the_sel(add_bmc: Callable[..., IpmiBmc]) -> None:
    bmc = add_bmc()
    assert ipmitool(bmc, "chassis", "power", "diag").returncode == 0
    event_log_for(bmc.host).inject("pcie")
    info = ipmitool(bmc, "sel", "info")
    assert info.returncode == 0, info.stderr
    assert f"Entries          : {SEED_EVENTS + 2}" in info.stdout
    listing = ipmitool(bmc, "sel", "elist")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.strip().splitlines()
    assert len(lines) == SEED_EVENTS + 2
    assert "Critical Interrupt" in lines[-2] and "NMI/Diag Interrupt" in lines[-2]
    assert "PCI SERR" in lines[-1]


def test_freeipmi_ipmi_sel_lists_the_nmi(
    add_bmc: Callable[..., IpmiBmc], freeipmi_config: Callable[..., Path]
) -> None:
    bmc = add_bmc()
    with driver_for(bmc) as driver:
        driver.send_nmi()
    proc = freeipmi("ipmi-sel", bmc, freeipmi_config(), "--ignore-sdr-cache", "--output-event-state")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if "|" in line and not line.startswith("ID")]
    assert len(lines) == SEED_EVENTS + 1
    assert "Critical Interrupt" in lines[-1] and "Front Panel NMI/Diagnostic Interrupt" in lines[-1]
    assert "Critical" in lines[-1]


class _HostileSel(SelResponder):
    """A SEL that answers what a broken or hostile BMC would."""

    def __init__(
        self, base: SelResponder, *, loop: bool = False, no_sel: bool = False, clock: float = 0.0
    ) -> None:
        super().__init__(base.log)
        self.loop, self.no_sel, self.clock = loop, no_sel, clock
        self.entry_requests = 0

    def answer(self, command: int, data: bytes) -> tuple[int, bytes]:
        if self.no_sel:
            return CC_INVALID_COMMAND, b""
        if command == GET_SEL_TIME and self.clock:
            code, now = super().answer(command, data)
            return code, struct.pack("<I", struct.unpack("<I", now)[0] + int(self.clock))
        code, payload = super().answer(command, data)
        if command == GET_SEL_ENTRY:
            self.entry_requests += 1
            if self.loop and code == 0:
                payload = struct.pack("<H", 0x0001) + payload[2:]  # always "next: record 1"
        return code, payload


def test_a_looping_record_chain_ends_the_walk(add_bmc: Callable[..., IpmiBmc]) -> None:
    bmc = add_bmc()
    hostile = _HostileSel(bmc.sel, loop=True)
    bmc.sel = hostile
    with driver_for(bmc) as driver:
        log = driver.read_event_log()
    (source,) = log.sources
    assert source.status is SourceStatus.TRUNCATED and "loops" in (source.detail or "")
    assert hostile.entry_requests == 2


def test_a_bmc_without_a_sel_offers_none(add_bmc: Callable[..., IpmiBmc]) -> None:
    bmc = add_bmc()
    bmc.sel = _HostileSel(bmc.sel, no_sel=True)
    with driver_for(bmc) as driver:
        log = driver.read_event_log(_since())
    assert not log.offered and log.kept == 0
    assert (
        "Invalid command" in (log.sources[0].detail or "") or "0xc1" in (log.sources[0].detail or "").lower()
    )


def test_a_bmc_clock_an_hour_ahead_is_corrected_and_said(add_bmc: Callable[..., IpmiBmc]) -> None:
    bmc = add_bmc()
    bmc.sel = _HostileSel(bmc.sel, clock=3600)
    host_log = event_log_for(bmc.host)
    host_log.add("nmi", at=dt.datetime.now(dt.UTC).timestamp() + 3600)  # stamped by the BMC's clock
    with driver_for(bmc) as driver:
        log = driver.read_event_log(_since(), dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))
        warnings = list(driver.warnings)
    assert len(log.nmi_entries) == 1
    assert any("clock" in w and "ahead" in w for w in warnings)


def test_pre_init_and_oem_records_without_time_are_skipped_and_counted() -> None:
    pre_init = sel_record(Record(7, 1234.0, MockEvent.NMI))
    assert entry_from_sel(pre_init) is None
    oem_untimed = bytes([7, 0, 0xE5]) + bytes(13)
    assert entry_from_sel(oem_untimed) is None
    assert entry_from_sel(b"\x01\x00") is None
    stamp = int(dt.datetime(2026, 11, 30, 5, tzinfo=dt.UTC).timestamp())
    deasserted = bytearray(sel_record(Record(8, stamp, MockEvent.MEMORY_ECC)))
    deasserted[12] |= 0x80
    entry = entry_from_sel(bytes(deasserted))
    assert entry is not None and entry.kind is EntryKind.MEMORY and "deasserted" in entry.message
    assert entry.severity is Severity.OK and entry.raw_id == "0x0008"


@pytest.mark.parametrize("wrong", [True, False])
def test_the_mock_sel_honours_reservations_for_partial_reads(
    add_bmc: Callable[..., IpmiBmc], wrong: bool
) -> None:
    sel = add_bmc().sel
    code, data = sel.answer(RESERVE_SEL, b"")
    reservation = struct.unpack("<H", data)[0] + (1 if wrong else 0)
    code, part = sel.answer(GET_SEL_ENTRY, struct.pack("<HHBB", reservation, 0, 8, 4))
    if wrong:
        assert code == CC_RESERVATION_CANCELLED
    else:
        assert code == 0 and len(part) == 2 + 4
    assert sel.answer(GET_SEL_ENTRY, struct.pack("<HHBB", 0, 0x7777, 0, 0xFF))[0] == CC_NOT_PRESENT
    code, info = sel.answer(GET_SEL_INFO, b"")
    assert code == 0 and struct.unpack_from("<H", info, 1)[0] == SEED_EVENTS
