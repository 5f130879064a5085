"""IPMI in the mock fleet: one simulated host behind both protocols, the ``ipmi`` flavour,
IPMI faults through the same API, counts, inventory.  Real clients over loopback UDP."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from mocks.bmc import IPMI_FAULTS, MockBmc, NoRedfish
from mocks.cli import IPMI_CIPHER_MODES
from mocks.faults import FaultError
from mocks.fleet import Fleet
from mocks.ipmi_server import CIPHER_MODES, FAULTS
from mocks.probe import Probe
from oob.inventory import load_inventory

pytest_plugins = ["mocks.pytest_plugin"]

Start = Callable[..., Fleet]
Http = Callable[[Fleet], requests.Session]


def ipmitool(bmc: MockBmc, *args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    """``ipmitool -I lanplus ... -E``: the password travels in $IPMI_PASSWORD, never on argv."""
    tool = shutil.which("ipmitool")
    if tool is None:
        pytest.fail("ipmitool is not installed: apt-get install ipmitool (scripts/test does this)")
    assert bmc.ipmi_port is not None, f"{bmc.name} does not serve IPMI"
    port, name = str(bmc.ipmi_port), user or bmc.username
    argv = [tool, "-I", "lanplus", "-H", bmc.address, "-p", port, "-U", name, "-E"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPMI")}
    env["IPMI_PASSWORD"] = bmc.password
    return subprocess.run([*argv, *args], capture_output=True, text=True, env=env, timeout=30, check=False)


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def ipmi_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ipmi-mock-server" and t.is_alive()]


@pytest.fixture
def control() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False
        yield session


def test_both_protocols_reach_the_same_host_and_are_counted(
    mock_fleet_factory: Start, mock_http: Http
) -> None:
    fleet = mock_fleet_factory(["ilo5"], ipmi=True)
    bmc = fleet.bmc("ilo5-1")
    assert bmc.protocols == ("redfish", "ipmi") and bmc.ipmi_port != bmc.port
    probe = Probe(mock_http(fleet), bmc)
    assert probe.login().status_code == 201

    status = ipmitool(bmc, "chassis", "power", "status")
    assert (status.returncode, status.stdout.strip()) == (0, "Chassis Power is on"), status.stderr
    assert probe.reset("ForceOff").status_code == 200  # Redfish powers off ...
    seen = ipmitool(bmc, "chassis", "power", "status").stdout.strip()
    assert seen == "Chassis Power is off"  # ... IPMI sees it
    assert ipmitool(bmc, "chassis", "power", "on").returncode == 0  # and the other way round
    assert probe.system()["PowerState"] == "On"

    assert ipmitool(bmc, "chassis", "power", "diag").returncode == 0
    assert (bmc.nmi_count, bmc.nmi_count_ipmi, bmc.nmi_count_redfish) == (1, 1, 0)
    assert probe.reset("Nmi").status_code == 200
    assert (bmc.nmi_count, bmc.nmi_count_ipmi, bmc.nmi_count_redfish) == (2, 1, 1)
    assert [r.event for r in bmc.host.history].count("nmi") == 2
    probe.logout()

    assert bmc.requests_ipmi >= 5 and bmc.requests_redfish >= 5  # one ipmitool run sends several
    assert bmc.requests == bmc.requests_ipmi + bmc.requests_redfish
    assert wait_until(lambda: not bmc.ipmi or not bmc.ipmi.sessions), "ipmitool left a session open"


def test_control_api_shows_ipmi_ports_and_counts(
    mock_fleet_factory: Start, control: requests.Session
) -> None:
    fleet = mock_fleet_factory(["ami", "ipmi"], ipmi=True, ipmi_cipher_mode="always3")
    assert ipmitool(fleet.bmc("ami-1"), "chassis", "power", "diag").returncode == 0
    listing = {b["name"]: b for b in control.get(f"{fleet.control_url}/bmcs", timeout=5).json()}
    ami, only = listing["ami-1"], listing["ipmi-1"]
    assert ami["ipmi_port"] == fleet.bmc("ami-1").ipmi_port and ami["protocols"] == ["redfish", "ipmi"]
    assert (ami["nmi_count"], ami["nmi_count_ipmi"], ami["nmi_count_redfish"]) == (1, 1, 0)
    assert ami["requests"] == ami["requests_ipmi"] > 0 and ami["requests_redfish"] == 0
    assert ami["ipmi"]["chassis_controls"] == {"0x04": 1} and ami["ipmi"]["cipher_mode"] == "always3"
    assert ami["ipmi"]["answering"] is True and ami["ipmi"]["open_sessions"] == 0
    assert (only["kind"], only["address"], only["url"], only["port"]) == ("ipmi", "127.0.0.1", None, None)
    assert only["ipmi_port"] == fleet.bmc("ipmi-1").ipmi_port and only["protocols"] == ["ipmi"]
    described = control.get(f"{fleet.control_url}/", timeout=5).json()
    assert described["ipmi_cipher_mode"] == "always3"
    assert [b["ipmi_port"] for b in described["bmcs"]] == [ami["ipmi_port"], only["ipmi_port"]]


def test_a_wrong_user_name_fails_fast(mock_fleet_factory: Start) -> None:
    fleet = mock_fleet_factory(["ipmi"])
    bmc = fleet.bmc("ipmi-1")
    started = time.monotonic()
    refused = ipmitool(bmc, "chassis", "power", "status", user="nobody")
    assert refused.returncode != 0
    assert time.monotonic() - started < 5, "the BMC must say 'unauthorized name' at once, not stay silent"
    assert bmc.ipmi is not None and bmc.ipmi.auth_failures >= 1


def test_the_ipmi_flavour_has_no_https_at_all(mock_fleet_factory: Start) -> None:
    fleet = mock_fleet_factory(["ipmi"])  # no ipmi=True: this flavour answers IPMI regardless
    bmc = fleet.bmc("ipmi-1")
    assert not bmc.has_redfish and bmc.protocols == ("ipmi",) and not bmc.is_listening
    for attribute in ("url", "port", "fingerprint", "listener", "service"):
        with pytest.raises(NoRedfish, match="serves IPMI only"):
            getattr(bmc, attribute)
        assert not hasattr(bmc, attribute)  # NoRedfish is an AttributeError
    described = bmc.to_dict()
    assert (described["url"], described["port"], described["fingerprint"]) == (None, None, None)
    assert described["reset_types"] == [] and described["listening"] is False
    assert bmc.inventory_address == "127.0.0.1" and bmc.ipmi_port
    # nothing listens on TCP at its port: there is no HTTPS side to find
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((bmc.address, bmc.ipmi_port), timeout=2).close()
    assert ipmitool(bmc, "chassis", "power", "status").stdout.strip() == "Chassis Power is on"
    described_bmcs = fleet.describe()["bmcs"]
    assert isinstance(described_bmcs, list) and len(described_bmcs) == 1
    assert {k: described_bmcs[0][k] for k in ("name", "vendor", "url", "address", "ipmi_port")} == {
        "name": "ipmi-1",
        "vendor": "ipmi",
        "url": None,
        "address": "127.0.0.1",
        "ipmi_port": bmc.ipmi_port,
    }


def test_ipmi_faults_through_the_control_api(mock_fleet_factory: Start, control: requests.Session) -> None:
    fleet = mock_fleet_factory(["ami"], ipmi=True)
    bmc = fleet.bmc("ami-1")
    assert bmc.ipmi is not None
    faults_url = f"{fleet.control_url}/bmcs/ami-1/faults"

    down = control.post(faults_url, json={"ipmi_down": True}, timeout=5)
    assert down.status_code == 200 and down.json()["faults"]["ipmi_down"] is True
    assert bmc.ipmi.faults == {"down"} and not bmc.ipmi_answering
    assert bmc.is_listening, "ipmi_down leaves Redfish alone"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b"\x06\x00\xff\x07" + bytes(12), (bmc.address, bmc.ipmi_port or 0))
    assert wait_until(lambda: bmc.ipmi is not None and bmc.ipmi.dropped == 1)
    cleared = control.delete(faults_url, timeout=5).json()["faults"]
    assert not any(cleared[name] for name in IPMI_FAULTS) and bmc.ipmi.faults == frozenset()

    assert control.post(faults_url, json={"ipmi_nmi_unsupported": True}, timeout=5).status_code == 200
    refused = ipmitool(bmc, "chassis", "power", "diag")
    assert refused.returncode != 0 and bmc.nmi_count == 0
    fleet.set_faults("ami-1", ipmi_nmi_unsupported=False, ipmi_drop_after_apply=True, down=True)
    assert bmc.fault_dict()["ipmi_drop_after_apply"] is True and not bmc.is_listening  # both kinds at once
    fleet.clear_faults("ami-1")
    assert bmc.is_listening and bmc.ipmi.faults == frozenset()

    unknown = control.post(faults_url, json={"ipmi_bogus": True}, timeout=5)
    assert unknown.status_code == 400 and "ipmi_drop_after_apply" in unknown.json()["error"]
    assert control.post(faults_url, json={"ipmi_down": 1}, timeout=5).status_code == 400
    # a bad Redfish value in the same object: nothing at all is applied
    mixed = control.post(faults_url, json={"ipmi_down": True, "latency_ms": -1}, timeout=5)
    assert mixed.status_code == 400 and bmc.ipmi.faults == frozenset()


def test_faults_of_a_protocol_the_bmc_does_not_serve_are_refused(mock_fleet_factory: Start) -> None:
    fleet = mock_fleet_factory(["dmtf", "ipmi"])
    with pytest.raises(FaultError, match="does not serve IPMI"):
        fleet.set_faults("dmtf-1", ipmi_down=True)
    fleet.set_faults("dmtf-1", ipmi_down=False)  # switching off what is off is fine
    with pytest.raises(FaultError, match="serves IPMI only"):
        fleet.set_faults("ipmi-1", nmi_not_offered=True)
    fleet.set_faults("ipmi-1", down=False, ipmi_drop_after_apply=True)
    assert fleet.bmc("ipmi-1").fault_dict()["ipmi_drop_after_apply"] is True


def test_inventory_names_the_ipmi_ports(mock_fleet_factory: Start, tmp_path: Path) -> None:
    fleet = mock_fleet_factory(["ilo5", "ami", "ipmi"], ipmi=True)
    path = fleet.write_inventory(tmp_path / "inv.toml", tls="fingerprint")
    hosts = tomllib.loads(path.read_text())["hosts"]
    for name in ("ilo5-1", "ami-1"):
        entry = hosts[name]["bmc"]
        assert entry["ipmi_port"] == fleet.bmc(name).ipmi_port and entry["address"] == fleet.bmc(name).url
        assert "methods" not in entry, "dual-protocol BMCs keep oob's default order, Redfish then IPMI"
    only = hosts["ipmi-1"]["bmc"]
    assert only == {"kind": "ipmi", "address": "127.0.0.1", "ipmi_port": fleet.bmc("ipmi-1").ipmi_port}
    loaded = load_inventory([path]).hosts
    assert loaded["ilo5-1"].bmc.effective_methods == ("redfish", "ipmi")
    assert loaded["ipmi-1"].bmc.effective_methods == ("ipmi",)
    assert loaded["ipmi-1"].bmc.ipmi_port == fleet.bmc("ipmi-1").ipmi_port

    without = mock_fleet_factory(["ami"])
    text = without.write_inventory(tmp_path / "plain.toml").read_text()
    assert "ipmi_port" not in text


def test_one_ipmi_thread_for_the_fleet_closed_by_stop(mock_fleet_factory: Start) -> None:
    before = len(ipmi_threads())
    fleet = mock_fleet_factory(["ilo5", "idrac9", "ipmi"], count=3, ipmi=True)
    assert fleet.ipmi_server is not None and len(fleet.ipmi_server.bmcs) == 9
    assert len(ipmi_threads()) == before + 1
    assert len({b.ipmi_port for b in fleet.bmcs}) == 9
    ipmi_bmcs = [b.ipmi for b in fleet.bmcs if b.ipmi is not None]
    fleet.stop()
    assert len(ipmi_threads()) == before
    assert all(b.serversocket.fileno() == -1 for b in ipmi_bmcs)
    assert mock_fleet_factory(["ilo5"]).ipmi_server is None  # no IPMI asked for: no thread, no pyghmi work


def test_bad_cipher_mode_is_refused_before_anything_binds(tmp_path: Path) -> None:
    before = len(ipmi_threads())
    with pytest.raises(ValueError, match="ipmi_cipher_mode"):
        Fleet.start(["ilo5"], ipmi=True, ipmi_cipher_mode="suite17", workdir=tmp_path)  # type: ignore[arg-type]
    assert len(ipmi_threads()) == before


def test_names_spelt_out_to_avoid_loading_pyghmi_match_the_server() -> None:
    assert set(IPMI_FAULTS.values()) == set(FAULTS)
    assert all(name == f"ipmi_{fault}" for name, fault in IPMI_FAULTS.items())
    assert IPMI_CIPHER_MODES == CIPHER_MODES
