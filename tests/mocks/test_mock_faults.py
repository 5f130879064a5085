"""Fault validation and consumption (no sockets)."""

from __future__ import annotations

import pytest

from mocks.faults import FAULT_NAMES, FaultError, Faults, FaultState


def test_unknown_names_are_refused_by_name() -> None:
    state = FaultState()
    with pytest.raises(FaultError, match="latencyms, nope"):
        state.update({"latencyms": 5, "nope": True})
    assert state.current == Faults()


@pytest.mark.parametrize(
    "changes",
    [
        {"latency_ms": -1},
        {"latency_ms": "5"},
        {"down": 1},
        {"http_status": 200},
        {"http_status": 700},
        {"session_limit": -2},
        {"http_status_count": 0},
    ],
)
def test_bad_values_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(FaultError):
        FaultState().update(changes)


def test_updates_merge_and_null_switches_off() -> None:
    state = FaultState()
    state.update({"latency_ms": 100, "session_limit": 2})
    state.update({"auth_failure": True, "session_limit": None})
    assert state.current.active() == {"latency_ms": 100, "auth_failure": True}
    assert state.clear() == Faults()


def test_http_status_is_consumed_per_request() -> None:
    state = FaultState()
    state.update({"http_status": 503, "http_status_count": 2})
    assert [state.take_http_status() for _ in range(3)] == [503, 503, None]
    state.update({"http_status": 500})  # count back to one when not given
    assert [state.take_http_status() for _ in range(2)] == [500, None]


def test_next_request_and_after_apply_faults_fire_once() -> None:
    state = FaultState()
    state.update({"connection_reset": True, "read_timeout_after_apply": True, "reset_after_apply": True})
    assert (state.take_connection_reset(), state.take_connection_reset()) == (True, False)
    assert [state.take_after_apply() for _ in range(3)] == ["hold", "reset", None]


def test_every_fault_has_a_default() -> None:
    assert set(Faults().to_dict()) == set(FAULT_NAMES)
    assert "down" in FAULT_NAMES and "no_session_service" in FAULT_NAMES
