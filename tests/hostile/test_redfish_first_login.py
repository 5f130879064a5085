"""A first login knows nothing of the BMC: it goes to the sessions URI the Redfish
specification fixes, and the Systems collection is read at its fixed URI, the service root
unread.  A BMC that keeps them elsewhere has its root read; credentials never go twice to
one URI, and never anywhere but the BMC's own origin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from oob.errors import BmcAuthError, BmcProtocolError
from tests.hostile.conftest import PASSWORD
from tests.hostile.server import (
    ROOT,
    SESSION_1,
    SESSIONS,
    SYSTEM,
    SYSTEMS,
    TOKEN,
    Answer,
    Behaviour,
    HostileServer,
    default_root,
    elsewhere_than_the_standard_login,
)

#: where iLO 5 2.70 keeps its sessions (its root says so)
SLASHED = SESSIONS + "/"


def _posts(bmc: HostileServer) -> list[str]:
    return [r.path for r in bmc.requests if r.method == "POST"]


def test_a_standard_bmc_is_logged_in_without_its_service_root(
    hostile_bmc: Callable[..., HostileServer], hostile_driver: Callable[..., Any]
) -> None:
    bmc = hostile_bmc()
    with hostile_driver(bmc) as driver:
        assert driver.system_uri() == SYSTEM
    assert [(r.method, r.path) for r in bmc.requests] == [
        ("POST", SESSIONS),
        ("GET", SYSTEMS),
        ("DELETE", SESSION_1),
    ]


def test_sessions_elsewhere_are_found_through_the_service_root(
    hostile_bmc: Callable[..., HostileServer], hostile_driver: Callable[..., Any]
) -> None:
    login = Answer(201, body={"@odata.id": SESSION_1}, headers={"X-Auth-Token": TOKEN}, location=SESSION_1)
    bmc = hostile_bmc(
        Behaviour(
            sessions_uri=SLASHED, answers={**elsewhere_than_the_standard_login(), ("POST", SLASHED): login}
        )
    )
    with hostile_driver(bmc) as driver:
        assert driver._transport.login_uri == SLASHED
    assert [(r.method, r.path) for r in bmc.requests] == [
        ("POST", SESSIONS),  # 404: not here
        ("GET", ROOT),
        ("POST", SLASHED),
        ("DELETE", SESSION_1),
    ]
    assert [PASSWORD.encode() in r.body for r in bmc.requests if r.method == "POST"] == [True, True]


@pytest.mark.parametrize(
    ("status", "error", "said"),
    [(404, BmcAuthError, "HTTP 404"), (405, BmcAuthError, "HTTP 405"), (307, BmcProtocolError, "redirect")],
)
def test_credentials_never_go_twice_to_the_uri_the_root_names(
    status: int,
    error: type[Exception],
    said: str,
    hostile_bmc: Callable[..., HostileServer],
    hostile_driver: Callable[..., Any],
) -> None:
    """The root names the very URI that took no login: that answer stands, nothing is re-sent."""
    bmc = hostile_bmc(Behaviour(answers={("POST", SESSIONS): Answer(status, location=SESSIONS + "/x")}))
    with pytest.raises(error, match=said):
        hostile_driver(bmc, attempts=3).open()
    assert _posts(bmc) == [SESSIONS]
    assert bmc.count("GET", ROOT) == 1


def test_systems_elsewhere_are_found_through_the_service_root(
    hostile_bmc: Callable[..., HostileServer], hostile_driver: Callable[..., Any]
) -> None:
    other = "/redfish/v1/OtherSystems"
    root = default_root()
    root["Systems"] = {"@odata.id": other}
    collection = {"@odata.id": other, "Members": [{"@odata.id": SYSTEM}], "Members@odata.count": 1}
    bmc = hostile_bmc(
        Behaviour(
            answers={
                ("GET", SYSTEMS): Answer(404),
                ("GET", ROOT): Answer(body=root),
                ("GET", other): Answer(body=collection),
            }
        )
    )
    with hostile_driver(bmc) as driver:
        assert driver.system_uri() == SYSTEM
    assert [(r.method, r.path) for r in bmc.requests if r.method == "GET"] == [
        ("GET", SYSTEMS),
        ("GET", ROOT),
        ("GET", other),
    ]
