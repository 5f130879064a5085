"""The control API: plain HTTP + JSON on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import requests

from mocks.fleet import Fleet
from mocks.probe import Probe

pytest_plugins = ["mocks.pytest_plugin"]

Start = Callable[..., Fleet]
Http = Callable[[Fleet], requests.Session]


@pytest.fixture
def control() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False
        yield session


def test_bmc_list_and_one_bmc(mock_fleet_factory: Start, control: requests.Session) -> None:
    fleet = mock_fleet_factory(["ilo5", "ami"], count=2)
    assert fleet.control_url and fleet.control_url.startswith("http://127.0.0.1:")
    listing = control.get(f"{fleet.control_url}/bmcs", timeout=5)
    assert listing.status_code == 200
    bmcs = listing.json()
    assert [b["name"] for b in bmcs] == ["ilo5-1", "ilo5-2", "ami-1", "ami-2"]
    for entry in bmcs:
        bmc = fleet.bmc(entry["name"])
        assert entry["address"] == bmc.url and entry["vendor"] == bmc.vendor
        assert entry["fingerprint"] == bmc.fingerprint and entry["power"] == "On"
        assert (entry["nmi_count"], entry["open_sessions"], entry["requests"], entry["resets"]) == (
            0,
            0,
            0,
            {},
        )
        assert entry["faults"]["latency_ms"] == 0
    one = control.get(f"{fleet.control_url}/bmcs/ami-2", timeout=5).json()
    assert one["name"] == "ami-2" and one["kind"] == "redfish" and "Nmi" not in one["reset_types"]
    missing = control.get(f"{fleet.control_url}/bmcs/ami-3", timeout=5)
    assert missing.status_code == 404 and "ami-3" in missing.json()["error"]
    assert control.get(f"{fleet.control_url}/nothing", timeout=5).status_code == 404


def test_counters_follow_traffic(
    mock_fleet_factory: Start, mock_http: Http, control: requests.Session
) -> None:
    fleet = mock_fleet_factory(["idrac9"])
    probe = Probe(mock_http(fleet), fleet.bmc("idrac9-1"))
    probe.login()
    probe.reset("Nmi")
    entry = control.get(f"{fleet.control_url}/bmcs/idrac9-1", timeout=5).json()
    assert (entry["nmi_count"], entry["open_sessions"], entry["resets"]) == (1, 1, {"Nmi": 1})
    assert entry["requests"] == fleet.bmc("idrac9-1").requests >= 5
    assert entry["host"]["state"] == entry["host_state"] == "panicked"
    probe.logout()
    assert control.get(f"{fleet.control_url}/bmcs/idrac9-1", timeout=5).json()["open_sessions"] == 0


def test_faults_are_merged_and_cleared(mock_fleet_factory: Start, control: requests.Session) -> None:
    fleet = mock_fleet_factory(["openbmc"])
    url = f"{fleet.control_url}/bmcs/openbmc-1/faults"
    assert control.post(url, json={"latency_ms": 50}, timeout=5).status_code == 200
    merged = control.post(url, json={"auth_failure": True}, timeout=5).json()["faults"]
    assert (merged["latency_ms"], merged["auth_failure"]) == (50, True)
    assert fleet.bmc("openbmc-1").faults.current.latency_ms == 50
    refused = control.post(url, json={"latencyms": 1, "bogus": True}, timeout=5)
    assert (
        refused.status_code == 400
        and "bogus" in refused.json()["error"]
        and "latencyms" in refused.json()["error"]
    )
    assert control.post(url, json=["down"], timeout=5).status_code == 400
    assert control.post(url, data=b"{oops", timeout=5).status_code == 400
    assert control.post(url, json={"down": "yes"}, timeout=5).status_code == 400
    cleared = control.delete(url, timeout=5).json()["faults"]
    assert (cleared["latency_ms"], cleared["auth_failure"]) == (0, False)
    assert control.post(f"{fleet.control_url}/bmcs/openbmc-9/faults", json={}, timeout=5).status_code == 404


def test_down_through_the_control_api(mock_fleet_factory: Start, control: requests.Session) -> None:
    fleet = mock_fleet_factory(["xcc"])
    url = f"{fleet.control_url}/bmcs/xcc-1"
    control.post(f"{url}/faults", json={"down": True}, timeout=5)
    assert control.get(url, timeout=5).json()["listening"] is False
    control.post(f"{url}/faults", json={"down": False}, timeout=5)
    assert control.get(url, timeout=5).json()["listening"] is True


def test_power(mock_fleet_factory: Start, control: requests.Session) -> None:
    fleet = mock_fleet_factory(["supermicro"])
    url = f"{fleet.control_url}/bmcs/supermicro-1/power"
    answer = control.post(url, json={"state": "Off"}, timeout=5)
    assert answer.status_code == 200 and answer.json()["power"] == "Off"
    assert fleet.bmc("supermicro-1").power == "Off"
    assert control.post(url, json={"state": "off"}, timeout=5).status_code == 400
    assert control.post(url, json={"state": "On"}, timeout=5).json()["power"] == "On"


def test_a_hardware_error_lands_in_the_bmc_log(mock_fleet_factory: Start, control: requests.Session) -> None:
    from datetime import UTC, datetime, timedelta

    from oob.drivers.factory import make_driver
    from oob.signals.bmclog import EntryKind

    fleet = mock_fleet_factory(["idrac9"])
    url = f"{fleet.control_url}/bmcs/idrac9-1/hardware-error"
    answer = control.post(url, json={"kind": "memory_ecc"}, timeout=5)
    assert answer.status_code == 200 and answer.json()["logged"] == "memory_ecc"
    assert control.post(url, json={"kind": "gremlins"}, timeout=5).status_code == 400
    # read back through oob's own Redfish driver, as `oob bmc log` does
    inventory = fleet.write_inventory(fleet.workdir / "inv.toml")
    from oob.inventory import load_inventory

    host = load_inventory([inventory]).hosts["idrac9-1"]
    with make_driver(host, "redfish") as driver:
        log = driver.read_event_log(datetime.now(UTC) - timedelta(minutes=5), None)
    assert [e.kind for e in log.hardware_errors] == [EntryKind.MEMORY]


def test_control_must_be_on_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        Fleet.start(vendors=["dmtf"], control="192.0.2.1:0")
