"""Redfish LogServices read from every vendor flavour of the mock fleet, over real sockets.

One fleet of every Redfish flavour for the module (each BMC keeps its own log): the NMI oob
sends and a hardware error the BMC saw land in the incident window; the seeded entries from
days before stay out of it; a vendor without LogServices is "not offered".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from mocks.bmc_logs import SEED_EVENTS, event_log_for
from mocks.flavours import REDFISH_FLAVOURS
from mocks.fleet import Fleet
from oob.drivers.factory import resolve_password
from oob.drivers.redfish.driver import RedfishDriver
from oob.drivers.tls import tls_policy_for
from oob.inventory import load_inventory
from oob.model import Host
from oob.signals.bmclog import EntryKind, SourceStatus
from tests.conftest import write_inventory

#: flavour -> the logs oob reads there (the source names of the result)
LOGS: dict[str, set[str]] = {
    "ilo5": {"System IML", "Manager IEL"},
    "ilo5-slash": {"System IML", "Manager IEL"},
    "idrac9": {"Manager Sel", "Manager Lclog"},
    "idrac9-old": {"Manager Sel", "Manager Lclog"},
    "openbmc": {"System EventLog"},
    "supermicro": {"System Log1"},
    "supermicro-x12": {"System Log1"},
    "xcc": {"System PlatformLog"},
    "ami": {"Manager SEL"},
    "dmtf": {"System Log1"},
    "cray-ex": set(),
    "intel": set(),
}
#: which hardware error each flavour's BMC "sees" during the test
HARDWARE = {
    name: ("machine_check", "memory_ecc", "pcie", "psu")[i % 4] for i, name in enumerate(sorted(LOGS))
}
KINDS = {
    "machine_check": EntryKind.MACHINE_CHECK,
    "memory_ecc": EntryKind.MEMORY,
    "pcie": EntryKind.PCIE,
    "psu": EntryKind.POWER,
}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Fleet, dict[str, Host]]]:
    tmp = tmp_path_factory.mktemp("bmclog")
    fleet = Fleet.start(vendors=list(REDFISH_FLAVOURS), count=1, bind="127.0.0.1", workdir=tmp / "fleet")
    try:
        hosts = load_inventory([write_inventory(fleet, tmp / "inventory.toml", timeout=5)]).hosts
        yield fleet, hosts
    finally:
        fleet.stop()


def _driver(host: Host) -> RedfishDriver:
    return RedfishDriver(host, resolve_password(host), tls_policy_for(host.bmc), connect_attempts=1)


def test_every_flavour_is_covered() -> None:
    assert set(LOGS) == set(REDFISH_FLAVOURS)


@pytest.mark.parametrize("flavour", sorted(LOGS))
def test_the_nmi_and_a_hardware_error_are_read_in_the_window(
    flavour: str, fleet: tuple[Fleet, dict[str, Host]]
) -> None:
    mock, hosts = fleet
    name = f"{flavour}-1"
    bmc = mock.bmc(name)
    host_log = event_log_for(bmc.host)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
    with _driver(hosts[name]) as driver:
        if driver.nmi_support().offered is False:
            host_log.add("nmi")  # ami, cray-ex: the NMI went over IPMI; the BMC logs it all the same
        else:
            driver.send_nmi()
        host_log.inject(HARDWARE[flavour])
        log = driver.read_event_log(since)
    assert log.host == name and log.method == "redfish"
    assert {s.name for s in log.sources if s.status is not SourceStatus.NOT_OFFERED} == LOGS[flavour]
    if not LOGS[flavour]:
        assert not log.offered and log.kept == 0
        assert [s.status for s in log.sources] == [SourceStatus.NOT_OFFERED]
        return
    assert log.complete, log.sources
    assert len(log.nmi_entries) == 1, [e.message for e in log.entries]
    assert [e.kind for e in log.hardware_errors] == [KINDS[HARDWARE[flavour]]]
    assert all(e.time >= since for e in log.entries)
    assert log.outside > 0  # the seeded entries of days before were read and left out
    assert log.bad_time == 0


@pytest.mark.parametrize(
    ("flavour", "full_log"),
    [("openbmc", "System EventLog"), ("ilo5-slash", "System IML"), ("idrac9", "Manager Sel")],
)
def test_without_a_window_start_every_page_is_read(
    flavour: str, full_log: str, fleet: tuple[Fleet, dict[str, Host]]
) -> None:
    """openbmc pages with $skip oldest first, ilo5-slash with ?page= behind 308s, iDRAC newest
    first; each of these logs keeps every event, five to a page."""
    mock, hosts = fleet
    name = f"{flavour}-1"
    records = event_log_for(mock.bmc(name).host).records()
    assert len(records) >= SEED_EVENTS > 5
    with _driver(hosts[name]) as driver:
        log = driver.read_event_log()
    sources = {s.name: s for s in log.sources}
    assert sources[full_log].status is SourceStatus.READ
    assert sources[full_log].seen == len(records)
    assert log.kept == log.seen


def test_a_window_that_ends_before_the_nmi_leaves_it_out(fleet: tuple[Fleet, dict[str, Host]]) -> None:
    mock, hosts = fleet
    name = "openbmc-1"
    host_log = event_log_for(mock.bmc(name).host)
    before = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    host_log.add("nmi")
    with _driver(hosts[name]) as driver:
        log = driver.read_event_log(before, before + dt.timedelta(days=8))
    assert not log.nmi_entries
    assert log.kept > 0 and all(e.kind is not EntryKind.NMI for e in log.entries)


def test_no_session_is_left_open(fleet: tuple[Fleet, dict[str, Host]]) -> None:
    mock, hosts = fleet
    with _driver(hosts["xcc-1"]) as driver:
        driver.read_event_log()
    assert not mock.bmc("xcc-1").sessions.all()
