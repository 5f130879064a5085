"""Every fault, seen by a real client over real sockets."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import pytest
import requests

from mocks.faults import FaultError
from mocks.fleet import Fleet
from mocks.probe import Probe

pytest_plugins = ["mocks.pytest_plugin"]

Start = Callable[..., Fleet]
Http = Callable[[Fleet], requests.Session]


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def _message_id(response: requests.Response) -> str:
    return str(response.json()["error"]["@Message.ExtendedInfo"][0]["MessageId"])


def test_latency_delays_every_response(mock_fleet_factory: Start, mock_http: Http) -> None:
    fleet = mock_fleet_factory(["dmtf"])
    probe = Probe(mock_http(fleet), fleet.bmc("dmtf-1"))
    probe.root()
    fleet.set_faults("dmtf-1", latency_ms=300)
    started = time.monotonic()
    assert probe.get("/redfish/v1/").status_code == 200
    assert time.monotonic() - started >= 0.3
    with pytest.raises(requests.exceptions.ReadTimeout):
        probe.get("/redfish/v1/", timeout=0.1)
    fleet.clear_faults("dmtf-1")
    started = time.monotonic()
    probe.get("/redfish/v1/")
    assert time.monotonic() - started < 0.3


def test_http_status_answers_the_next_requests(mock_fleet_factory: Start, mock_http: Http) -> None:
    fleet = mock_fleet_factory(["supermicro"])
    bmc = fleet.bmc("supermicro-1")
    probe = Probe(mock_http(fleet), bmc)
    probe.login()
    target = probe.reset_target()
    fleet.set_faults("supermicro-1", http_status=503, http_status_count=2)
    first = probe.request("POST", target, json={"ResetType": "Nmi"})
    second = probe.get("/redfish/v1/")
    assert (first.status_code, second.status_code) == (503, 503)
    assert _message_id(first) == "Base.v1_4_0.ServiceTemporarilyUnavailable"
    assert bmc.nmi_count == 0  # an injected error applies nothing
    assert probe.get("/redfish/v1/").status_code == 200
    assert bmc.faults.current.http_status is None
    probe.logout()


def test_read_timeout_after_apply_applies_then_never_answers(
    mock_fleet_factory: Start, mock_http: Http
) -> None:
    fleet = mock_fleet_factory(["idrac9"])
    bmc = fleet.bmc("idrac9-1")
    probe = Probe(mock_http(fleet), bmc)
    probe.login()
    target = probe.reset_target()
    fleet.set_faults("idrac9-1", read_timeout_after_apply=True)
    with pytest.raises(requests.exceptions.ReadTimeout):
        probe.request("POST", target, json={"ResetType": "Nmi"}, timeout=0.5)
    assert (bmc.nmi_count, bmc.resets) == (1, {"Nmi": 1})
    assert bmc.faults.current.read_timeout_after_apply is False  # consumed
    # the client gave up and closed its socket: the held connection goes too
    assert _wait_for(lambda: bmc.listener.connection_count == 0)
    probe.http.close()
    assert probe.logout().status_code == 200  # a new connection is served normally


def test_a_held_connection_is_released_by_stop(mock_fleet_factory: Start, mock_http: Http) -> None:
    fleet = mock_fleet_factory(["openbmc"])
    bmc = fleet.bmc("openbmc-1")
    probe = Probe(mock_http(fleet), bmc)
    probe.login()
    target = probe.reset_target()
    fleet.set_faults("openbmc-1", read_timeout_after_apply=True)
    outcome: list[BaseException] = []

    def patient_client() -> None:
        try:
            probe.request("POST", target, json={"ResetType": "Nmi"}, timeout=60)
        except requests.RequestException as error:
            outcome.append(error)

    client = threading.Thread(target=patient_client)
    client.start()
    assert _wait_for(lambda: bmc.nmi_count == 1)
    started = time.monotonic()
    fleet.stop()
    client.join(10)
    assert not client.is_alive() and time.monotonic() - started < 5
    assert len(outcome) == 1 and isinstance(outcome[0], requests.exceptions.ConnectionError)
    assert not [t for t in threading.enumerate() if t.name.startswith("mock-")]


def test_reset_after_apply_applies_then_resets_the_connection(
    mock_fleet_factory: Start, mock_http: Http
) -> None:
    fleet = mock_fleet_factory(["openbmc"])
    bmc = fleet.bmc("openbmc-1")
    probe = Probe(mock_http(fleet), bmc)
    probe.login()
    target = probe.reset_target()
    fleet.set_faults("openbmc-1", reset_after_apply=True)
    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        probe.request("POST", target, json={"ResetType": "Nmi"})
    assert "reset" in str(caught.value).lower() or "aborted" in str(caught.value).lower()
    assert bmc.nmi_count == 1
    assert probe.reset("ForceRestart").status_code == 200  # consumed: the next Reset is answered
    probe.logout()


def test_connection_reset_applies_nothing(mock_fleet_factory: Start, mock_http: Http) -> None:
    fleet = mock_fleet_factory(["xcc"])
    bmc = fleet.bmc("xcc-1")
    probe = Probe(mock_http(fleet), bmc)
    probe.login()
    target = probe.reset_target()
    fleet.set_faults("xcc-1", connection_reset=True)
    with pytest.raises(requests.exceptions.ConnectionError):
        probe.request("POST", target, json={"ResetType": "Nmi"})
    assert (bmc.nmi_count, bmc.resets) == (0, {})
    assert probe.reset("Nmi").status_code == 204
    assert bmc.nmi_count == 1
    probe.logout()


def test_session_limit(mock_fleet_factory: Start, mock_http: Http) -> None:
    fleet = mock_fleet_factory(["ilo5", "idrac9"])
    http = mock_http(fleet)
    for name, status in (("ilo5-1", 503), ("idrac9-1", 400)):
        bmc = fleet.bmc(name)
        fleet.set_faults(name, session_limit=1)
        first, second = Probe(http, bmc), Probe(http, bmc)
        assert first.login().status_code == 201
        refused = second.login()
        assert refused.status_code == status
        assert _message_id(refused).endswith(".SessionLimitExceeded")
        assert bmc.open_sessions == 1
        first.logout()
        assert second.login().status_code == 201
        second.logout()
    fleet.set_faults("ilo5-1", session_limit=0)
    assert Probe(http, fleet.bmc("ilo5-1")).login().status_code == 503


def test_auth_failure_refuses_every_login(mock_fleet_factory: Start, mock_http: Http) -> None:
    fleet = mock_fleet_factory(["idrac9"])
    bmc = fleet.bmc("idrac9-1")
    http = mock_http(fleet)
    already = Probe(http, bmc)
    already.login()
    fleet.set_faults("idrac9-1", auth_failure=True)
    assert Probe(http, bmc).login().status_code == 401
    assert Probe(http, bmc).get("/redfish/v1/Systems", auth=(bmc.username, bmc.password)).status_code == 401
    assert already.get("/redfish/v1/Systems").status_code == 200  # sessions opened before stay valid
    already.logout()
    assert bmc.open_sessions == 0


def test_nmi_not_offered_hides_and_refuses_nmi(mock_fleet_factory: Start, mock_http: Http) -> None:
    fleet = mock_fleet_factory(["xcc"])
    bmc = fleet.bmc("xcc-1")
    probe = Probe(mock_http(fleet), bmc)
    probe.login()
    fleet.set_faults("xcc-1", nmi_not_offered=True)
    action = probe.system()["Actions"]["#ComputerSystem.Reset"]
    assert "Nmi" not in action["ResetType@Redfish.AllowableValues"]
    info = probe.get(action["@Redfish.ActionInfo"]).json()
    assert "Nmi" not in info["Parameters"][0]["AllowableValues"]
    refused = probe.reset("Nmi")
    assert refused.status_code == 400 and _message_id(refused).endswith("ActionParameterValueNotInList")
    assert bmc.nmi_count == 0
    fleet.clear_faults("xcc-1")
    assert "Nmi" in probe.system()["Actions"]["#ComputerSystem.Reset"]["ResetType@Redfish.AllowableValues"]
    probe.logout()


def test_down_refuses_connections_and_comes_back_on_the_same_port(
    mock_fleet_factory: Start, mock_http: Http
) -> None:
    fleet = mock_fleet_factory(["intel"])
    bmc = fleet.bmc("intel-1")
    probe = Probe(mock_http(fleet), bmc)
    probe.login()
    port = bmc.port
    fleet.set_faults("intel-1", down=True)
    assert not bmc.is_listening
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((bmc.address, port), timeout=2).close()
    with pytest.raises(requests.exceptions.ConnectionError):
        probe.get("/redfish/v1/Systems")  # the kept-alive connection was dropped too
    fleet.set_faults("intel-1", down=False)
    assert bmc.port == port and bmc.is_listening
    assert probe.get("/redfish/v1/Systems").status_code == 200  # sessions survive, like a network outage
    probe.logout()


def test_no_session_service_means_basic_auth_only(mock_fleet_factory: Start, mock_http: Http) -> None:
    fleet = mock_fleet_factory(["dmtf"])
    bmc = fleet.bmc("dmtf-1")
    http = mock_http(fleet)
    fleet.set_faults("dmtf-1", no_session_service=True)
    probe = Probe(http, bmc)
    root = probe.root()
    assert "SessionService" not in root and "Sessions" not in root["Links"]
    assert probe.request("POST", "/redfish/v1/SessionService/Sessions", json={}).status_code == 404
    assert probe.get("/redfish/v1/SessionService", auth=(bmc.username, bmc.password)).status_code == 404
    basic = Probe(http, bmc)
    basic.http.auth = (bmc.username, bmc.password)
    assert basic.reset("Nmi").status_code == 204
    assert (bmc.nmi_count, bmc.open_sessions) == (1, 0)


def test_unknown_fault_names_are_refused(mock_fleet_factory: Start) -> None:
    fleet = mock_fleet_factory(["dmtf"])
    with pytest.raises(FaultError, match="latency"):
        fleet.set_faults("dmtf-1", latency=5)
    with pytest.raises(KeyError):
        fleet.set_faults("dmtf-9", down=True)
