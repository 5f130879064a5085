"""The simulated host's state machine and clocks (no sockets)."""

from __future__ import annotations

import pytest

from mocks.host import HostState, ManualClock, RealClock, SimulatedHost


def test_nmi_while_running_or_hung_panics_and_is_counted() -> None:
    clock = ManualClock(100.0)
    host = SimulatedHost("h", clock=clock)
    host.hang()
    assert host.state is HostState.HUNG
    clock.advance(5)
    host.apply_reset("Nmi")
    assert (host.state, host.nmi_count, host.since) == (HostState.PANICKED, 1, 105.0)
    assert host.history[-1].to_dict() == {"at": 105.0, "event": "nmi", "before": "hung", "after": "panicked"}


def test_nmi_while_off_is_recorded_but_changes_nothing() -> None:
    host = SimulatedHost("h", clock=ManualClock())
    host.set_power("Off")
    host.apply_reset("Nmi")
    assert (host.state, host.power, host.nmi_count) == (HostState.OFF, "Off", 1)


@pytest.mark.parametrize(
    ("start", "reset_type", "power"),
    [
        ("On", "ForceOff", "Off"),
        ("On", "GracefulShutdown", "Off"),
        ("On", "Off", "Off"),  # HPE Cray EX's non-standard value
        ("Off", "On", "On"),
        ("Off", "ForceOn", "On"),
        ("On", "PushPowerButton", "Off"),
        ("Off", "PushPowerButton", "On"),
        ("Off", "PowerCycle", "On"),
        ("On", "PowerCycle", "On"),
        ("Off", "ForceRestart", "Off"),
    ],
)
def test_reset_types_move_power(start: str, reset_type: str, power: str) -> None:
    host = SimulatedHost("h", clock=ManualClock())
    host.set_power(start)
    host.apply_reset(reset_type)
    assert host.power == power


def test_restart_brings_a_panicked_host_back_to_running() -> None:
    host = SimulatedHost("h", clock=ManualClock())
    host.apply_reset("Nmi")
    host.apply_reset("ForceRestart")
    assert host.state is HostState.RUNNING


def test_unknown_reset_type_is_refused() -> None:
    host = SimulatedHost("h", clock=ManualClock())
    assert not host.can_apply("GracefulShutdownGracefulRestart")
    with pytest.raises(ValueError):
        host.apply_reset("GracefulShutdownGracefulRestart")
    with pytest.raises(ValueError):
        host.set_power("Standby")


def test_scale_shortens_durations_and_manual_clock_steps() -> None:
    clock = ManualClock()
    host = SimulatedHost("h", clock=clock, scale=0.01)
    assert host.scaled(60) == pytest.approx(0.6)
    clock.sleep(2.5)
    assert clock.now() == 2.5
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        SimulatedHost("h", scale=0)


def test_real_clock_is_monotonic() -> None:
    clock = RealClock()
    first = clock.now()
    clock.sleep(0.01)
    assert clock.now() - first >= 0.009


def test_watchers_see_every_event_after_it_happened() -> None:
    host = SimulatedHost("h", clock=ManualClock())
    seen: list[tuple[str, str, str]] = []
    host.watch(lambda h, record: seen.append((record.event, record.after, h.state.value)))
    host.apply_reset("Nmi")
    host.apply_reset("ForceOff")
    assert seen == [("nmi", "panicked", "panicked"), ("power_off", "off", "off")]
