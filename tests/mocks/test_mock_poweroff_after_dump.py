"""The mock host whose kdump final action is poweroff: after its dump it is off, not rebooting."""

from __future__ import annotations

from pathlib import Path

from mocks.host import HostState

from .test_mock_hosts_lifecycle import make_host, run_for, state


def test_poweroff_after_dump_leaves_the_host_off_until_powered_on(tmp_path: Path) -> None:
    host, clock = make_host(tmp_path)
    host.set_faults({"poweroff_after_dump": True})
    host.apply_reset("Nmi")
    run_for(clock, 300)
    assert (state(host), host.power, host.dump_status) == (HostState.OFF, "Off", "complete")
    assert not host.answers_probe
    host.apply_reset("On")  # what oob crash --recover does for it
    run_for(clock, 30.25)
    assert state(host) is HostState.RUNNING


def test_without_a_dump_the_panic_timeout_still_reboots(tmp_path: Path) -> None:
    host, clock = make_host(tmp_path)
    host.set_faults({"poweroff_after_dump": True, "kdump_not_armed": True})
    host.apply_reset("Nmi")
    run_for(clock, 300)
    assert state(host) is HostState.RUNNING  # kdump's final action needs kdump
