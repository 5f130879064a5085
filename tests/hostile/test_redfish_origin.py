"""A hostile BMC cannot move oob's requests (the password, the token, the NMI) off its origin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from oob.errors import BmcProtocolError, OutcomeUnknown
from tests.hostile.conftest import PASSWORD
from tests.hostile.server import (
    RESET,
    SESSION_1,
    SESSIONS,
    SYSTEM,
    TOKEN,
    Answer,
    Behaviour,
    HostileServer,
    elsewhere_than_the_standard_login,
)


def _hostile_uris(bystander: HostileServer, path: str) -> list[str]:
    port = bystander.port
    return [
        f"@127.0.0.2:{port}{path}",
        f"//127.0.0.2:{port}{path}",
        f"https://127.0.0.2:{port}{path}",
        f"http://127.0.0.2:{port}{path}",
        "/redfish/../../" + path.lstrip("/"),
        f"%2F%2F127.0.0.2:{port}{path}",
        f"/redfish/v1/%2F%2F127.0.0.2:{port}{path}",
        f"\\\\127.0.0.2:{port}{path.replace('/', chr(92))}",
    ]


def _nothing_reached(bystander: HostileServer) -> None:
    assert bystander.connections == 0
    assert PASSWORD.encode() not in bystander.received()
    assert TOKEN.encode() not in bystander.received()


@pytest.mark.parametrize("index", range(8))
def test_links_sessions_off_origin_never_gets_the_password(
    index: int,
    hostile_bmc: Callable[..., HostileServer],
    hostile_driver: Callable[..., Any],
    bystander: HostileServer,
) -> None:
    uri = _hostile_uris(bystander, SESSIONS)[index]
    bmc = hostile_bmc(Behaviour(sessions_uri=uri, answers=elsewhere_than_the_standard_login()))
    with pytest.raises(BmcProtocolError) as caught:
        hostile_driver(bmc).open()
    assert caught.value.exit_code == 4
    assert "Links.Sessions" in caught.value.message and bmc.url.split("//")[1] in caught.value.message
    # the one login tried went to the BMC itself, at the specification's URI (answered 404);
    # the URI its root names instead is refused, and nothing reaches anyone else
    assert [(r.method, r.path) for r in bmc.requests if r.method == "POST"] == [("POST", SESSIONS)]
    _nothing_reached(bystander)


@pytest.mark.parametrize("index", range(8))
def test_reset_target_off_origin_sends_no_nmi_anywhere(
    index: int,
    hostile_bmc: Callable[..., HostileServer],
    hostile_driver: Callable[..., Any],
    bystander: HostileServer,
) -> None:
    uri = _hostile_uris(bystander, RESET)[index]
    bmc = hostile_bmc(Behaviour(reset_target=uri))
    with pytest.raises(BmcProtocolError) as caught, hostile_driver(bmc) as driver:
        driver.send_nmi()
    assert "target" in caught.value.message
    assert bmc.count("POST", RESET) == 0
    assert bmc.sessions_open == 0
    _nothing_reached(bystander)


@pytest.mark.parametrize("index", [0, 1, 2, 4, 5])
def test_system_member_off_origin_is_refused(
    index: int,
    hostile_bmc: Callable[..., HostileServer],
    hostile_driver: Callable[..., Any],
    bystander: HostileServer,
) -> None:
    bmc = hostile_bmc(Behaviour(system_member=_hostile_uris(bystander, SYSTEM)[index]))
    with pytest.raises(BmcProtocolError), hostile_driver(bmc) as driver:
        driver.power_state()
    assert bmc.sessions_open == 0
    _nothing_reached(bystander)


@pytest.mark.parametrize("index", [0, 1, 2, 3, 5])
def test_session_location_off_origin_is_refused_and_the_session_still_deleted(
    index: int,
    hostile_bmc: Callable[..., HostileServer],
    hostile_driver: Callable[..., Any],
    bystander: HostileServer,
) -> None:
    bmc = hostile_bmc(Behaviour(session_location=_hostile_uris(bystander, SESSION_1)[index]))
    with pytest.raises(BmcProtocolError, match="Location of the new session"):
        hostile_driver(bmc).open()
    # the DELETE went to the session's @odata.id on the BMC itself, never to the Location
    assert bmc.count("DELETE", SESSION_1) == 1 and bmc.sessions_open == 0
    _nothing_reached(bystander)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("where", ["itself", "bystander", "http"])
def test_get_redirects_leave_nothing_off_origin(
    status: int,
    where: str,
    hostile_bmc: Callable[..., HostileServer],
    hostile_driver: Callable[..., Any],
    bystander: HostileServer,
    plain_bystander: HostileServer,
) -> None:
    bmc = hostile_bmc()
    location = {
        "itself": SYSTEM,
        "bystander": f"https://127.0.0.2:{bystander.port}{SYSTEM}",
        "http": f"http://127.0.0.2:{plain_bystander.port}{SYSTEM}",
    }[where]
    bmc.behaviour.answers[("GET", SYSTEM)] = Answer(status, location=location)
    with pytest.raises(BmcProtocolError) as caught, hostile_driver(bmc) as driver:
        driver.power_state()
    assert "redirect" in caught.value.message or "Location" in caught.value.message
    assert bmc.count("GET", SYSTEM) <= 4  # a few hops at most
    assert bmc.sessions_open == 0
    _nothing_reached(bystander)
    _nothing_reached(plain_bystander)


def test_same_origin_get_redirect_is_followed_and_every_connection_checks_the_ca(
    hostile_bmc: Callable[..., HostileServer], hostile_driver: Callable[..., Any], hostile_ca: Any
) -> None:
    bmc = hostile_bmc()
    bmc.behaviour.answers[("GET", SYSTEM + "/")] = Answer(308, location=f"{bmc.url}{SYSTEM}")
    bmc.behaviour.system_member = SYSTEM + "/"
    with hostile_driver(bmc) as driver:
        assert driver.power_state().value == "On"
        driver.send_nmi()
        records = driver._transport.connections
    assert bmc.count("GET", SYSTEM) == 1 and bmc.count("POST", RESET) == 1
    assert len(records) >= 2  # the NMI opened its own connection
    assert all(r.ca_file == str(hostile_ca.ca_file) and r.pinned is None for r in records)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("where", ["itself", "bystander", "http"])
def test_nmi_redirect_is_outcome_unknown_and_sent_exactly_once(
    status: int,
    where: str,
    hostile_bmc: Callable[..., HostileServer],
    hostile_driver: Callable[..., Any],
    bystander: HostileServer,
    plain_bystander: HostileServer,
) -> None:
    bmc = hostile_bmc()
    location = {
        "itself": RESET,
        "bystander": f"https://127.0.0.2:{bystander.port}{RESET}",
        "http": f"http://127.0.0.2:{plain_bystander.port}{RESET}",
    }[where]
    bmc.behaviour.answers[("POST", RESET)] = Answer(status, location=location)
    with pytest.raises(OutcomeUnknown) as caught, hostile_driver(bmc, attempts=3) as driver:
        driver.send_nmi()
    assert caught.value.exit_code == 6
    assert bmc.count("POST", RESET) == 1
    assert bystander.count() == 0 and plain_bystander.count() == 0
    assert bmc.sessions_open == 0
    _nothing_reached(bystander)
    _nothing_reached(plain_bystander)


@pytest.mark.parametrize("status", [302, 307, 308])
def test_login_redirect_is_refused_and_the_password_goes_nowhere_else(
    status: int,
    hostile_bmc: Callable[..., HostileServer],
    hostile_driver: Callable[..., Any],
    bystander: HostileServer,
) -> None:
    bmc = hostile_bmc()
    bmc.behaviour.answers[("POST", SESSIONS)] = Answer(
        status, location=f"https://127.0.0.2:{bystander.port}{SESSIONS}"
    )
    with pytest.raises(BmcProtocolError, match="redirect"):
        hostile_driver(bmc, attempts=3).open()
    assert bmc.count("POST", SESSIONS) == 1
    _nothing_reached(bystander)


def test_every_connection_is_checked_by_the_pinned_fingerprint(
    hostile_bmc: Callable[..., HostileServer], hostile_driver: Callable[..., Any], hostile_ca: Any
) -> None:
    """The BMC swaps its certificate (same CA, same names) after the login: the NMI's
    fresh connection meets the pin and nothing is sent."""
    from oob.errors import TlsError

    bmc = hostile_bmc()
    driver = hostile_driver(bmc, attempts=3, fingerprint=hostile_ca.fingerprints["main"])
    with pytest.raises(TlsError) as caught, driver:
        driver.nmi_support()
        bmc.behaviour.certificate = "other"
        driver.send_nmi()
    assert "fingerprint" in caught.value.message
    assert bmc.count("POST", RESET) == 0
    records = driver._transport.connections
    assert records and all(r.pinned == hostile_ca.fingerprints["main"] for r in records)
    assert {(r.host, r.port) for r in records} == {("127.0.0.1", bmc.port)}
