"""Hostile bodies: too large, too deep, the wrong shape.  A clear BmcProtocolError before
the NMI; after it, the NMI's status decides and nothing raises a Python error."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from oob.drivers.redfish.bodies import MAX_DEPTH, BodyError, json_depth_exceeds, parse_json
from oob.errors import ActionUnsupported, BmcProtocolError, BmcRefused, OutcomeUnknown
from tests.hostile.server import (
    RESET,
    ROOT,
    SESSIONS,
    SYSTEM,
    SYSTEMS,
    Answer,
    Behaviour,
    HostileServer,
    default_system,
    elsewhere_than_the_standard_login,
)

DEEP = b"[" * 100_000 + b"]" * 100_000
HUGE = 100 * 1024 * 1024


def test_depth_scan_ignores_brackets_inside_strings() -> None:
    assert not json_depth_exceeds('{"a": "' + "[" * 1000 + '"}')
    assert json_depth_exceeds("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    assert not json_depth_exceeds("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert parse_json(b'{"a": "[[[[\\"]]]"}') == {"a": '[[[["]]]'}
    for bad in (DEEP, b"\xff\xfe", b"{not json", b"[" * 10 + b"1"):
        with pytest.raises(BodyError):
            parse_json(bad)


@pytest.mark.parametrize(
    "answer",
    [
        Answer(body_size=HUGE),  # Content-Length says 100 MB
        Answer(body_size=HUGE, length=False),  # no length: read until the cap
        Answer(body=DEEP),
        Answer(body=b"<html>not json</html>"),
    ],
    ids=["huge", "huge-unannounced", "deep", "garbage"],
)
def test_hostile_get_bodies_are_a_protocol_error(
    answer: Answer, hostile_bmc: Callable[..., HostileServer], hostile_driver: Callable[..., Any]
) -> None:
    bmc = hostile_bmc(Behaviour(answers={("GET", SYSTEM): answer}))
    started = time.monotonic()
    with pytest.raises(BmcProtocolError) as caught, hostile_driver(bmc, timeout=10.0) as driver:
        driver.power_state()
    assert time.monotonic() - started < 30
    assert SYSTEM in caught.value.message
    assert caught.value.exit_code == 4
    assert bmc.sessions_open == 0


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, None), (202, None), (500, OutcomeUnknown), (400, BmcRefused), (501, ActionUnsupported)],
)
@pytest.mark.parametrize("body", [DEEP, b"\x00garbage", "huge"], ids=["deep", "garbage", "huge"])
def test_hostile_nmi_reply_never_becomes_not_sent_by_its_body(
    status: int,
    expected: type[Exception] | None,
    body: Any,
    hostile_bmc: Callable[..., HostileServer],
    hostile_driver: Callable[..., Any],
) -> None:
    answer = Answer(status, body_size=HUGE) if body == "huge" else Answer(status, body=body)
    bmc = hostile_bmc(Behaviour(answers={("POST", RESET): answer}))
    with hostile_driver(bmc, attempts=3, timeout=10.0) as driver:
        if expected is None:
            result = driver.send_nmi()
            assert result.status == status and result.bmc_message is None
        else:
            with pytest.raises(expected):
                driver.send_nmi()
    assert bmc.count("POST", RESET) == 1


def _system_with(**changes: Any) -> dict[str, Any]:
    system = default_system()
    for key, value in changes.items():
        if key == "reset":
            system["Actions"]["#ComputerSystem.Reset"] = value
        else:
            system[key] = value
    return system


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (SYSTEMS, [1, 2], "Systems collection"),
        (SYSTEMS, "Systems", "Systems collection"),
        (SYSTEMS, {"Members": {"@odata.id": SYSTEM}}, "Members"),
        (SYSTEMS, {"Members": ["/redfish/v1/Systems/1"]}, "Members[0]"),
        (SYSTEMS, {"Members": [{"@odata.id": 5}]}, "Members"),
        (SYSTEM, [], "system resource"),
        (SYSTEM, _system_with(Actions=["#ComputerSystem.Reset"]), "Actions"),
        (
            SYSTEM,
            _system_with(reset="/redfish/v1/Systems/1/Actions/ComputerSystem.Reset"),
            "ComputerSystem.Reset",
        ),
        (SYSTEM, _system_with(reset={"target": ["/x"]}), "target"),
        (SYSTEM, _system_with(reset={"target": None}), "target"),
        (
            SYSTEM,
            _system_with(reset={"target": RESET, "ResetType@Redfish.AllowableValues": "Nmi"}),
            "AllowableValues",
        ),
    ],
)
def test_wrong_shapes_are_a_protocol_error_naming_the_field_and_no_nmi_is_sent(
    path: str,
    body: Any,
    field: str,
    hostile_bmc: Callable[..., HostileServer],
    hostile_driver: Callable[..., Any],
) -> None:
    bmc = hostile_bmc(Behaviour(answers={("GET", path): Answer(body=body)}))
    with pytest.raises(BmcProtocolError) as caught, hostile_driver(bmc) as driver:
        driver.send_nmi()
    assert field in caught.value.message
    assert bmc.count("POST", RESET) == 0
    assert bmc.sessions_open == 0


@pytest.mark.parametrize(
    "body", [[], "Redfish", 42, None, DEEP, b"<html>"], ids=["list", "str", "int", "empty", "deep", "html"]
)
def test_service_root_that_is_not_an_object_never_falls_back_to_basic(
    body: Any, hostile_bmc: Callable[..., HostileServer], hostile_driver: Callable[..., Any]
) -> None:
    answers = {**elsewhere_than_the_standard_login(), ("GET", ROOT): Answer(body=body)}
    bmc = hostile_bmc(Behaviour(answers=answers))
    with pytest.raises(BmcProtocolError) as caught:
        hostile_driver(bmc).open()
    assert "service root" in caught.value.message or ROOT in caught.value.message
    # the standard login (answered 404), the root GET and nothing else: no other login, no Basic
    assert bmc.count() == 2 and bmc.count("GET", ROOT) == 1
    assert not any("authorization" in r.headers for r in bmc.requests)
    assert bmc.count("POST", SESSIONS) == 1


@pytest.mark.parametrize(
    "links",
    [[], {"Sessions": "/redfish/v1/SessionService/Sessions"}, {"Sessions": {"id": 1}}],
    ids=["list", "str", "no-id"],
)
def test_service_root_links_of_the_wrong_shape_are_refused(
    links: Any, hostile_bmc: Callable[..., HostileServer], hostile_driver: Callable[..., Any]
) -> None:
    from tests.hostile.server import default_root

    root = default_root()
    root["Links"] = links
    bmc = hostile_bmc(
        Behaviour(answers={**elsewhere_than_the_standard_login(), ("GET", ROOT): Answer(body=root)})
    )
    with pytest.raises(BmcProtocolError, match="Links"):
        hostile_driver(bmc).open()
    assert bmc.count("POST") == 1  # the standard login, answered 404; nothing after the root


@pytest.mark.parametrize("token", [None, "a b", "x" * 5000])
def test_login_without_a_usable_token_is_refused(
    token: str | None, hostile_bmc: Callable[..., HostileServer], hostile_driver: Callable[..., Any]
) -> None:
    headers = {} if token is None else {"X-Auth-Token": token}
    bmc = hostile_bmc(Behaviour(answers={("POST", SESSIONS): Answer(201, body={}, headers=headers)}))
    with pytest.raises(BmcProtocolError, match="X-Auth-Token"):
        hostile_driver(bmc).open()


def test_task_location_off_origin_is_dropped_with_a_warning(
    hostile_bmc: Callable[..., HostileServer], hostile_driver: Callable[..., Any]
) -> None:
    bmc = hostile_bmc(
        Behaviour(
            answers={
                ("POST", RESET): Answer(202, location="https://127.0.0.2:9/redfish/v1/TaskService/Tasks/1")
            }
        )
    )
    with hostile_driver(bmc) as driver:
        result = driver.send_nmi()
        assert result.status == 202 and result.task is None
        assert any("task Location" in w for w in driver.warnings)
    bmc2 = hostile_bmc(
        Behaviour(answers={("POST", RESET): Answer(202, location="/redfish/v1/TaskService/Tasks/7")})
    )
    with hostile_driver(bmc2) as driver:
        assert driver.send_nmi().task == "/redfish/v1/TaskService/Tasks/7"


def test_a_100_mb_body_is_refused_without_holding_it(
    hostile_bmc: Callable[..., HostileServer], hostile_driver: Callable[..., Any]
) -> None:
    import tracemalloc

    from oob.drivers.redfish.bodies import MAX_BODY_BYTES

    bmc = hostile_bmc(Behaviour(answers={("GET", SYSTEM): Answer(body_size=HUGE, length=False)}))
    with hostile_driver(bmc, timeout=10.0) as driver:
        tracemalloc.start()
        try:
            with pytest.raises(BmcProtocolError, match="larger than"):
                driver.power_state()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 3 * MAX_BODY_BYTES
