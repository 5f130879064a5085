"""Each mock BMC over real TLS sockets: sessions, authentication, URI habits, the Reset action."""

from __future__ import annotations

import ssl
from collections.abc import Callable

import pytest
import requests

from mocks.flavours import REDFISH_FLAVOURS
from mocks.fleet import Fleet
from mocks.probe import Probe

pytest_plugins = ["mocks.pytest_plugin"]

Start = Callable[..., Fleet]
Http = Callable[[Fleet], requests.Session]


def test_session_lifecycle_on_every_flavour(mock_fleet_factory: Start, mock_http: Http) -> None:
    fleet = mock_fleet_factory(sorted(REDFISH_FLAVOURS))
    http = mock_http(fleet)
    for bmc in fleet.bmcs:
        probe = Probe(http, bmc)
        created = probe.login()
        assert created.status_code == 201, (bmc.name, created.text)
        assert created.headers["X-Auth-Token"] and created.headers["Location"]
        assert created.json()["UserName"] == bmc.username
        assert bmc.open_sessions == 1
        own = probe.get(probe.location or "")
        assert own.status_code == 200 and own.json()["Id"] == created.json()["Id"], bmc.name
        members = probe.get(probe.sessions_uri()).json()["Members"]
        assert len(members) == 1
        gone = probe.logout()
        assert gone.status_code in (200, 204), bmc.name
        assert bmc.open_sessions == 0
        assert bmc.sessions.created_total == 1


def test_vendor_answers_to_logout(mock_fleet_factory: Start, mock_http: Http) -> None:
    fleet = mock_fleet_factory(["ilo5", "idrac9", "supermicro", "dmtf"])
    http = mock_http(fleet)
    statuses = {}
    for bmc in fleet.bmcs:
        probe = Probe(http, bmc)
        probe.login()
        response = probe.logout()
        statuses[bmc.vendor] = response.status_code
        if bmc.vendor == "ilo5":
            assert response.json()["error"]["@Message.ExtendedInfo"][0]["MessageId"] == "Base.1.4.Success"
        if bmc.vendor == "supermicro":
            assert response.json()["Success"]["code"] == "Base.v1_4_0.Success"
    assert statuses == {"ilo5": 200, "idrac9": 200, "supermicro": 200, "dmtf": 204}


def test_ilo_location_is_absolute_others_relative(mock_fleet_factory: Start, mock_http: Http) -> None:
    fleet = mock_fleet_factory(["ilo5", "idrac9"])
    http = mock_http(fleet)
    ilo, idrac = (Probe(http, fleet.bmc(n)) for n in ("ilo5-1", "idrac9-1"))
    ilo.login()
    idrac.login()
    assert ilo.location and ilo.location.startswith(
        fleet.bmc("ilo5-1").url + "/redfish/v1/SessionService/Sessions/"
    )
    # the root was read as /redfish/v1/, so iLO answers in the slash form; ids are <user> + hex
    assert ilo.location.endswith("/") and ilo.location.rstrip("/").split("/")[-1].startswith("admin")
    assert idrac.location == "/redfish/v1/SessionService/Sessions/275"
    ilo.logout()
    idrac.logout()


def test_authentication_is_required_except_for_the_root(mock_fleet_factory: Start, mock_http: Http) -> None:
    fleet = mock_fleet_factory(["idrac9", "ilo5"])
    http = mock_http(fleet)
    idrac = Probe(http, fleet.bmc("idrac9-1"))
    assert idrac.get("/redfish/v1").status_code == 200
    systems = idrac.get("/redfish/v1/Systems")
    assert systems.status_code == 401
    assert systems.json()["error"]["@Message.ExtendedInfo"][0]["MessageId"].endswith(".NoValidSession")
    assert idrac.get("/redfish/v1/Systems", headers={"X-Auth-Token": "forged"}).status_code == 401
    assert idrac.get("/redfish/v1/Systems", auth=("admin", "wrong")).status_code == 401
    basic = idrac.get("/redfish/v1/Systems", auth=(fleet.username, fleet.password))
    assert basic.status_code == 200 and basic.json()["Members@odata.count"] == 1
    assert fleet.bmc("idrac9-1").open_sessions == 0  # Basic auth opens no session
    ilo = Probe(http, fleet.bmc("ilo5-1"))
    assert ilo.get("/redfish/v1/systems/").json()["error"]["code"] == "iLO.0.10.ExtendedInfo"


def test_wrong_password_gets_401_with_extended_info(mock_fleet_factory: Start, mock_http: Http) -> None:
    fleet = mock_fleet_factory(["openbmc", "ilo5"])
    http = mock_http(fleet)
    for bmc in fleet.bmcs:
        refused = Probe(http, bmc).login(password="not-it")
        assert refused.status_code == 401
        info = refused.json()["error"]["@Message.ExtendedInfo"]
        assert info and info[0]["MessageId"].split(".")[-1] in ("ResourceAtUriUnauthorized", "NoValidSession")
        assert "X-Auth-Token" not in refused.headers
        assert bmc.open_sessions == 0


def test_early_ilo5_redirects_slashless_uris_with_308(mock_fleet_factory: Start, mock_http: Http) -> None:
    fleet = mock_fleet_factory(["ilo5-slash"])
    http = mock_http(fleet)
    bmc = fleet.bmc("ilo5-slash-1")
    probe = Probe(http, bmc)
    moved = probe.get("/redfish/v1/Systems?$top=1")
    assert moved.status_code == 308
    assert moved.headers["Location"] == "/redfish/v1/Systems/?$top=1"
    root = probe.get("/redfish/v1/").json()
    assert root["@odata.id"] == "/redfish/v1/"
    assert root["Systems"]["@odata.id"] == "/redfish/v1/Systems/"
    assert probe.login().status_code == 201  # the root links the slash form, so no redirect
    system = probe.system()
    assert system["Actions"]["#ComputerSystem.Reset"]["target"].endswith("ComputerSystem.Reset/")
    assert (
        "GracefulShutdown"
        not in system["Actions"]["#ComputerSystem.Reset"]["ResetType@Redfish.AllowableValues"]
    )
    # a client that follows the redirect (requests keeps method and body on 308) reaches the action
    followed = probe.request(
        "POST", probe.reset_target().rstrip("/"), json={"ResetType": "Nmi"}, allow_redirects=True
    )
    assert followed.status_code == 200 and bmc.nmi_count == 1
    probe.logout()


def test_ilo5_echoes_the_caller_s_slash_form(mock_fleet_factory: Start, mock_http: Http) -> None:
    fleet = mock_fleet_factory(["ilo5"])
    probe = Probe(mock_http(fleet), fleet.bmc("ilo5-1"))
    probe.login()
    with_slash = probe.get("/redfish/v1/Systems/1/").json()
    without = probe.get("/redfish/v1/Systems/1").json()
    assert with_slash["@odata.id"] == "/redfish/v1/Systems/1/"
    assert with_slash["Actions"]["#ComputerSystem.Reset"]["target"].endswith("/ComputerSystem.Reset/")
    assert without["@odata.id"] == "/redfish/v1/Systems/1"
    assert without["Actions"]["#ComputerSystem.Reset"]["target"].endswith("/ComputerSystem.Reset")
    assert probe.get("/redfish/v1/systems/1").status_code == 200  # iLO ignores case
    probe.logout()


def test_openbmc_serves_both_forms_as_captured(mock_fleet_factory: Start, mock_http: Http) -> None:
    fleet = mock_fleet_factory(["openbmc"])
    probe = Probe(mock_http(fleet), fleet.bmc("openbmc-1"))
    probe.login()
    for uri in ("/redfish/v1/SessionService", "/redfish/v1/SessionService/"):
        response = probe.get(uri)
        assert response.status_code == 200
        assert response.json()["@odata.id"] == "/redfish/v1/SessionService/"  # bmcweb's own habit
    assert probe.get("/redfish/v1/systems/system").status_code == 404  # case matters here
    probe.logout()


def test_old_idrac_logs_in_at_redfish_v1_sessions(mock_fleet_factory: Start, mock_http: Http) -> None:
    fleet = mock_fleet_factory(["idrac9-old"])
    probe = Probe(mock_http(fleet), fleet.bmc("idrac9-old-1"))
    assert probe.sessions_uri() == "/redfish/v1/Sessions"
    assert probe.login().status_code == 201
    assert probe.get("/redfish/v1/Sessions").json()["Members@odata.count"] == 1
    assert probe.logout().status_code == 200


@pytest.mark.parametrize(
    ("vendor", "status", "message_id"),
    [
        ("ilo5", 200, "Base.1.4.Success"),
        ("ilo5-slash", 200, "Base.1.0.Success"),
        ("idrac9", 204, None),
        ("idrac9-old", 204, None),
        ("openbmc", 200, "Base.1.16.0.Success"),
        ("supermicro", 200, "Base.v1_4_0.Success"),
        ("xcc", 204, None),
        ("intel", 204, None),
        ("dmtf", 204, None),
    ],
)
def test_nmi_is_applied_and_answered_in_vendor_style(
    vendor: str, status: int, message_id: str | None, mock_fleet_factory: Start, mock_http: Http
) -> None:
    fleet = mock_fleet_factory([vendor])
    bmc = fleet.bmc(f"{vendor}-1")
    probe = Probe(mock_http(fleet), bmc)
    probe.login()
    response = probe.reset("Nmi")
    assert response.status_code == status
    body = response.json() if response.content else {}
    if vendor.startswith("ilo5"):
        assert body["error"]["@Message.ExtendedInfo"][0]["MessageId"] == message_id
    elif vendor == "supermicro":
        assert body["Success"]["code"] == message_id
    elif message_id:
        assert body["@Message.ExtendedInfo"][0]["MessageId"] == message_id
    else:
        assert response.content == b""
    assert (bmc.nmi_count, bmc.resets, bmc.host.state.value, bmc.power) == (1, {"Nmi": 1}, "panicked", "On")
    probe.logout()


def test_reset_effects_on_power(mock_fleet_factory: Start, mock_http: Http) -> None:
    fleet = mock_fleet_factory(["openbmc"])
    bmc = fleet.bmc("openbmc-1")
    probe = Probe(mock_http(fleet), bmc)
    probe.login()
    steps = [("ForceOff", "Off"), ("On", "On"), ("GracefulShutdown", "Off"), ("ForceOn", "On"),
             ("ForceRestart", "On"), ("PowerCycle", "On"), ("GracefulRestart", "On")]  # fmt: skip
    for reset_type, power in steps:
        assert probe.reset(reset_type).status_code == 200, reset_type
        assert bmc.power == power, reset_type
        assert probe.system()["PowerState"] == power
    assert bmc.resets == {t: 1 for t, _ in steps}
    assert bmc.nmi_count == 0
    probe.logout()


def test_reset_errors(mock_fleet_factory: Start, mock_http: Http) -> None:
    fleet = mock_fleet_factory(["openbmc", "idrac9", "ami"])
    http = mock_http(fleet)
    for bmc in fleet.bmcs:
        probe = Probe(http, bmc)
        probe.login()
        missing = probe.reset(None)
        assert missing.status_code == 400
        assert missing.json()["error"]["@Message.ExtendedInfo"][0]["MessageId"].endswith(
            ".ActionParameterMissing"
        )
        bogus = probe.reset("Suspend")
        assert bogus.status_code == 400
        messages = bogus.json()["error"]["@Message.ExtendedInfo"]
        expected = "PropertyValueNotInList" if bmc.vendor == "idrac9" else "ActionParameterValueNotInList"
        assert messages[0]["MessageId"].endswith("." + expected)
        assert "Suspend" in messages[0]["Message"]
        malformed = probe.request(
            "POST", probe.reset_target(), data=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert malformed.status_code == 400
        assert probe.get(probe.reset_target()).status_code == 405
        assert bmc.resets == {} and bmc.host.history == []
        probe.logout()


def test_ami_offers_no_nmi_and_refuses_it(mock_fleet_factory: Start, mock_http: Http) -> None:
    fleet = mock_fleet_factory(["ami"])
    bmc = fleet.bmc("ami-1")
    probe = Probe(mock_http(fleet), bmc)
    probe.login()
    info_uri = probe.system()["Actions"]["#ComputerSystem.Reset"]["@Redfish.ActionInfo"]
    values = probe.get(info_uri).json()["Parameters"][0]["AllowableValues"]
    assert "Nmi" not in values
    refused = probe.reset("Nmi")
    assert refused.status_code == 400
    message = refused.json()["error"]["@Message.ExtendedInfo"][0]
    assert message["MessageId"] == "Base.1.5.ActionParameterValueNotInList"
    assert message["MessageArgs"] == ["Nmi", "ResetType", "ComputerSystem.Reset"]
    assert message["MessageSeverity"] == "Warning"
    assert bmc.nmi_count == 0
    probe.logout()


def test_cray_ex_accepts_its_nonstandard_off(mock_fleet_factory: Start, mock_http: Http) -> None:
    fleet = mock_fleet_factory(["cray-ex"])
    bmc = fleet.bmc("cray-ex-1")
    probe = Probe(mock_http(fleet), bmc)
    probe.login()
    assert probe.reset("Off").status_code == 204
    assert bmc.power == "Off"
    assert probe.reset("Nmi").status_code == 400
    probe.logout()


def test_supermicro_x12_keeps_its_firmware_bug(mock_fleet_factory: Start, mock_http: Http) -> None:
    fleet = mock_fleet_factory(["supermicro-x12"])
    bmc = fleet.bmc("supermicro-x12-1")
    probe = Probe(mock_http(fleet), bmc)
    probe.login()
    action = probe.system()["Actions"]["#ComputerSystem.Reset"]
    assert "GracefulShutdownGracefulRestart" in action["ResetType@Redfish.AllowableValues"]
    info = probe.get(action["@Redfish.ActionInfo"]).json()
    assert "GracefulShutdownGracefulRestart" in info["Parameters"][0]["AllowableValues"]
    assert probe.reset("GracefulShutdownGracefulRestart").status_code == 400
    assert probe.reset("GracefulShutdown").status_code == 200 and bmc.power == "Off"
    probe.logout()


def test_power_state_follows_the_simulated_host(mock_fleet_factory: Start, mock_http: Http) -> None:
    fleet = mock_fleet_factory(["xcc"])
    probe = Probe(mock_http(fleet), fleet.bmc("xcc-1"))
    probe.login()
    fleet.set_power("xcc-1", "Off")
    assert probe.system()["PowerState"] == "Off"
    fleet.set_power("xcc-1", "On")
    assert probe.system()["PowerState"] == "On"
    probe.logout()


def test_unknown_resources_and_methods(mock_fleet_factory: Start, mock_http: Http) -> None:
    fleet = mock_fleet_factory(["dmtf"])
    probe = Probe(mock_http(fleet), fleet.bmc("dmtf-1"))
    probe.login()
    missing = probe.get("/redfish/v1/Chassis")
    assert missing.status_code == 404
    assert missing.json()["error"]["@Message.ExtendedInfo"][0]["MessageId"].endswith(".ResourceMissingAtURI")
    patched = probe.request("PATCH", probe.system_uri(), json={"AssetTag": "x"})
    assert patched.status_code == 405 and patched.headers["Allow"] == "GET"
    assert probe.get("/redfish").json() == {"v1": "/redfish/v1/"}
    probe.logout()


def test_certificate_is_the_fleet_s_and_fingerprint_matches(
    mock_fleet_factory: Start, mock_http: Http
) -> None:
    import hashlib

    fleet = mock_fleet_factory(["intel"], count=2)
    first, second = fleet.bmcs
    der = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate((first.address, first.port)))
    assert hashlib.sha256(der).hexdigest() == first.fingerprint
    assert first.fingerprint != second.fingerprint and first.port != second.port
    with requests.Session() as untrusting:
        untrusting.trust_env = False
        with pytest.raises(requests.exceptions.SSLError):
            untrusting.get(first.url + "/redfish/v1/", verify=True, timeout=5)
    assert mock_http(fleet).get(first.url + "/redfish/v1/", timeout=5).status_code == 200


def test_keep_alive_reuses_one_connection(mock_fleet_factory: Start, mock_http: Http) -> None:
    fleet = mock_fleet_factory(["supermicro"])
    bmc = fleet.bmc("supermicro-1")
    probe = Probe(mock_http(fleet), bmc)
    probe.login()
    for _ in range(5):
        assert probe.system()["PowerState"] == "On"
    assert bmc.listener.connection_count == 1
    probe.logout()


def test_captured_urls_of_the_real_bmc_become_the_mock_s_own(
    mock_fleet_factory: Start, mock_http: Http
) -> None:
    fleet = mock_fleet_factory(["idrac9"])
    bmc = fleet.bmc("idrac9-1")
    probe = Probe(mock_http(fleet), bmc)
    probe.login()
    card = probe.get("/redfish/v1/Managers/iDRAC.Embedded.1").json()["Oem"]["Dell"]["DelliDRACCard"]
    assert card["URLString"] == f"https://127.0.0.1:{bmc.port}"
    # the expanded OEM resource is also served at its own URI, as iDRAC does
    assert probe.get(card["@odata.id"]).json()["URLString"] == card["URLString"]
    probe.logout()
