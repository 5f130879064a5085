"""oob.signals.bmclog: times, severities, classification, the window and the counts, shown safely."""

from __future__ import annotations

import datetime as dt

import pytest

from oob.drivers.redfish.logs import entry_from_redfish
from oob.signals.bmclog import (
    MAX_TEXT,
    BmcLog,
    EntryKind,
    LogCollector,
    LogEntry,
    Severity,
    SourceStatus,
    Window,
    bounded_text,
    classify,
    from_epoch,
    parse_severity,
    parse_time,
    summary,
    summary_lines,
)

UTC = dt.UTC
NMI_AT = dt.datetime(2026, 11, 30, 5, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-30T05:00:00Z", NMI_AT),
        ("2026-11-30T05:00:00+00:00", NMI_AT),
        ("2026-11-29T23:00:00-06:00", NMI_AT),  # iDRAC writes its local offset
        ("2026-11-30T06:00:00+0100", NMI_AT),
        ("2026-11-30T05:00:00.123456789Z", NMI_AT.replace(microsecond=123456)),
    ],
)
def test_redfish_times_with_an_offset_are_read_as_utc(text: str, expected: dt.datetime) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-30T05:00:00",  # no offset: the zone is unknown, never guessed
        "1970-01-01T00:00:42Z",  # a clock never set
        "2026-13-40T05:00:00Z",
        "30/11/2026 05:00",
        "2026-11-30T05:00:00Z" + " " * 40,
        "",
        None,
        12345,
        ["2026-11-30T05:00:00Z"],
    ],
)
def test_unreadable_times_are_none(text: object) -> None:
    assert parse_time(text) is None


def test_sel_epochs_skip_unspecified_and_pre_init_times() -> None:
    assert from_epoch(int(NMI_AT.timestamp())) == NMI_AT
    assert from_epoch(0xFFFFFFFF) is None
    assert from_epoch(3600) is None  # seconds since the BMC started


def test_severities_from_redfish_and_vendor_words() -> None:
    assert parse_severity("Critical") is Severity.CRITICAL
    assert parse_severity(None, "Warning") is Severity.WARNING
    assert parse_severity("OK") is Severity.OK
    assert parse_severity("Informational") is Severity.OK
    assert parse_severity({"x": 1}, 3, "nonsense") is Severity.UNKNOWN


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"message_id": "OpenBMC.0.1.NMIDiagnosticInterrupt"}, EntryKind.NMI),
        ({"message": "User Initiated NMI Switch"}, EntryKind.NMI),
        ({"sensor": "Critical Interrupt", "message": "something happened"}, EntryKind.NMI),
        ({"sensor": "Critical Interrupt", "message": "Legacy PCI SERR. Bus=59"}, EntryKind.PCIE),
        (
            {"message_id": "OpenBMC.0.1.CPUError", "message": "CPU Error Occurred: Machine Check."},
            EntryKind.MACHINE_CHECK,
        ),
        (
            {"message": "Uncorrectable Machine Check Exception (Board 1, Processor 1)"},
            EntryKind.MACHINE_CHECK,
        ),
        ({"message_id": "OpenBMC.0.1.MemoryECCUncorrectable"}, EntryKind.MEMORY),
        (
            {"message_id": "MEM0001", "message": "Multi-bit memory errors detected on DIMM_A1."},
            EntryKind.MEMORY,
        ),
        ({"message": "A bus fatal error was detected on a component at bus 59"}, EntryKind.PCIE),
        ({"message": "The power input for power supply 1 is lost."}, EntryKind.POWER),
        ({"sensor_type": 0x13, "offset": 0x00}, EntryKind.NMI),
        ({"sensor_type": 0x07, "offset": 0x0B}, EntryKind.MACHINE_CHECK),
        ({"sensor_type": 0x0C, "offset": 0x01}, EntryKind.MEMORY),
        ({"sensor_type": 0x08, "offset": 0x01}, EntryKind.POWER),
        ({"message": "Server power restored."}, EntryKind.RESTART),
        ({"message": "Fan redundancy regained."}, EntryKind.OTHER),
    ],
)
def test_classification(fields: dict[str, object], kind: EntryKind) -> None:
    assert classify(**fields) is kind  # type: ignore[arg-type]


def test_hardware_errors_are_the_four_kinds() -> None:
    hardware = {k for k in EntryKind if k.hardware_error}
    assert hardware == {EntryKind.MACHINE_CHECK, EntryKind.MEMORY, EntryKind.PCIE, EntryKind.POWER}


def _entry(minutes: float, kind: EntryKind = EntryKind.OTHER, message: str = "m") -> LogEntry:
    return LogEntry(NMI_AT + dt.timedelta(minutes=minutes), Severity.OK, "SEL", message, kind)


def test_the_collector_keeps_the_window_and_counts_the_rest() -> None:
    window = Window.around_nmi(NMI_AT, lead=dt.timedelta(minutes=10), until=NMI_AT + dt.timedelta(minutes=5))
    collector = LogCollector("node1", "ipmi", window)
    for minutes in (-60, -10, -1, 0, 5, 6):
        collector.add(_entry(minutes))
    collector.add(None)
    collector.add(_entry(0.5, EntryKind.NMI))
    collector.add(_entry(-2, EntryKind.MEMORY))
    collector.source("SEL", SourceStatus.READ, seen=9)
    log = collector.result()
    assert (log.seen, log.kept, log.outside, log.skipped) == (9, 6, 2, 1)
    assert [e.time for e in log.entries] == sorted(e.time for e in log.entries)
    assert [e.kind for e in log.nmi_entries] == [EntryKind.NMI]
    assert [e.kind for e in log.hardware_errors] == [EntryKind.MEMORY]
    assert log.offered and log.complete
    data = log.to_dict()
    assert data["kept"] == 6 and data["skipped_bad_time"] == 1 and data["nmi_entries"] == 1
    assert data["window"] == {"since": "2026-11-30T04:50:00Z", "until": "2026-11-30T05:05:00Z"}


def test_the_collector_bounds_what_it_keeps() -> None:
    collector = LogCollector("node1", "redfish", Window(), max_kept=3)
    for minutes in range(10):
        collector.add(_entry(minutes))
    log = collector.result()
    assert (log.kept, log.dropped, log.seen) == (3, 7, 10)


def test_a_window_must_be_aware_and_ordered() -> None:
    with pytest.raises(ValueError):
        Window(dt.datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        Window(NMI_AT, NMI_AT - dt.timedelta(seconds=1))


def test_no_log_offered_is_said_not_raised() -> None:
    collector = LogCollector("node1", "redfish", Window())
    collector.source("LogServices", SourceStatus.NOT_OFFERED, detail="none linked")
    log = collector.result()
    assert not log.offered and log.kept == 0
    assert summary(log) == "the BMC offers no event log"
    guest = LogCollector("vm1", "libvirt", Window())
    guest.source("hypervisor", SourceStatus.NOT_OFFERED)
    assert summary(guest.result()) == "the hypervisor (libvirt) keeps no event log oob reads"


def test_strings_from_the_bmc_are_bounded_and_shown_escaped() -> None:
    hostile = "\x1b]0;owned\x07\x1b[2J" + "A" * 10_000
    entry = entry_from_redfish(
        {"Created": "2026-11-30T05:00:00Z", "Message": hostile, "Severity": "Critical", "Id": "7"}, "IML"
    )
    assert entry is not None
    assert len(entry.message) <= MAX_TEXT
    log = BmcLog("node1", "redfish", Window(), entries=(entry,))
    lines = summary_lines(log)
    assert lines and all("\x1b" not in line and "\x07" not in line for line in lines)
    assert "\\x1b]0;owned" in lines[0]
    assert bounded_text({"not": "text"}) is None and bounded_text(True) is None


@pytest.mark.parametrize(
    "member",
    [
        {"Message": "no time"},
        {"Created": "yesterday", "Message": "bad time"},
        {"Created": 1700000000, "Message": "a number"},
        "not an object",
        None,
    ],
)
def test_redfish_entries_without_a_readable_time_are_none(member: object) -> None:
    assert entry_from_redfish(member, "EventLog") is None


def test_a_redfish_entry_keeps_its_fields() -> None:
    entry = entry_from_redfish(
        {
            "Id": "1700000001",
            "Created": "2026-11-30T05:00:00+00:00",
            "Message": "NMI Diagnostic Interrupt.",
            "MessageId": "OpenBMC.0.1.NMIDiagnosticInterrupt",
            "Severity": "Critical",
        },
        "EventLog",
    )
    assert entry == LogEntry(
        NMI_AT,
        Severity.CRITICAL,
        "EventLog",
        "NMI Diagnostic Interrupt.",
        EntryKind.NMI,
        "OpenBMC.0.1.NMIDiagnosticInterrupt",
        None,
        "1700000001",
    )
