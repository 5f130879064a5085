"""The simulated host's crash lifecycle on a manual clock: every step, every fault, no sockets.

A :class:`ManualClock` drives the :class:`Scheduler`: each ``advance`` runs what came due,
so the states below are exact, not raced.  The files are real (``tmp_path``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mocks.crashkernel import CrashKernel
from mocks.faults import FaultError
from mocks.host import HostConfig, HostState, HostStateError, ManualClock, SimulatedHost
from mocks.scheduler import Scheduler

#: at scale 1: 15 s crash kernel boot, 1 s kernel log, 4 s of vmcore (64 KiB at 16 KiB/s), 30 s reboot
CONFIG = HostConfig(address="127.0.1.9", dump_size=64 * 1024, dump_rate=16 * 1024)


def make_host(
    tmp_path: Path, layout: str = "rhel-local", **changes: Any
) -> tuple[SimulatedHost, ManualClock]:
    clock = ManualClock(1000.0)
    config = replace(CONFIG, **{"layout": layout, "dump_target": tmp_path / "crash", **changes})
    host = SimulatedHost("web01", clock=clock, config=config, timers=Scheduler(clock))
    CrashKernel(host)
    return host, clock


def run_for(clock: ManualClock, seconds: float, step: float = 0.25) -> None:
    """Advance in small steps: each step of kdump is scheduled from the time the last one ran."""
    for _ in range(round(seconds / step)):
        clock.advance(step)


def state(host: SimulatedHost) -> HostState:
    """Read afresh (a plain ``host.state`` would stay narrowed by an earlier assert, for mypy)."""
    return host.state


def states(host: SimulatedHost) -> list[str]:
    return [record.after for record in host.history if record.before != record.after]


def test_hung_host_dumps_then_reboots(tmp_path: Path) -> None:
    host, clock = make_host(tmp_path)
    assert host.set_state("hung") is HostState.HUNG and not host.answers_probe
    host.apply_reset("Nmi")
    assert state(host) is HostState.PANICKED and host.dump_directory is None
    run_for(clock, 14.75)
    assert state(host) is HostState.PANICKED  # the crash kernel is still booting
    run_for(clock, 0.5)
    assert state(host) is HostState.DUMPING and host.dump_status == "writing"
    directory = host.dump_directory
    assert directory is not None and directory.parent == tmp_path / "crash"
    assert directory.name.startswith("127.0.0.1-")  # RHEL's local form
    run_for(clock, 6)
    assert state(host) is HostState.REBOOTING and host.dump_status == "complete"
    assert sorted(p.name for p in directory.iterdir()) == ["kexec-dmesg.log", "vmcore", "vmcore-dmesg.txt"]
    assert "Kernel panic - not syncing: NMI: Not continuing" in (directory / "vmcore-dmesg.txt").read_text()
    assert (directory / "vmcore").read_bytes()[:8] == b"KDUMP   "
    run_for(clock, 28)  # the reboot began about 20 s after the NMI
    assert state(host) is HostState.REBOOTING and not host.answers_probe
    run_for(clock, 2)
    assert state(host) is HostState.RUNNING and host.answers_probe
    assert states(host) == ["hung", "panicked", "dumping", "rebooting", "running"]
    assert host.nmi_count == 1


def test_an_nmi_panics_a_healthy_host_too(tmp_path: Path) -> None:
    # kernel.unknown_nmi_panic=1 does not ask whether the host was hung: only oob does
    host, clock = make_host(tmp_path, "debian")
    host.apply_reset("Nmi")
    run_for(clock, 60)
    assert states(host) == ["panicked", "dumping", "rebooting", "running"]
    assert host.dump_directory is not None and host.dump_directory.name.isdigit()


@pytest.mark.parametrize("how", ["armed=False", "fault", "no target"])
def test_not_armed_panics_and_reboots_without_a_dump(tmp_path: Path, how: str) -> None:
    changes: dict[str, Any] = {"armed": False} if how == "armed=False" else {}
    if how == "no target":
        changes["dump_target"] = None
    host, clock = make_host(tmp_path, **changes)
    if how == "fault":
        host.set_faults({"kdump_not_armed": True})
    host.set_state("hung")
    host.apply_reset("Nmi")
    run_for(clock, 9.75)
    assert state(host) is HostState.PANICKED  # kernel.panic = 10
    run_for(clock, 0.5)
    assert state(host) is HostState.REBOOTING
    run_for(clock, 30)
    assert state(host) is HostState.RUNNING
    assert host.dump_directory is None and not (tmp_path / "crash").exists()


def test_power_off_mid_dump_stops_everything(tmp_path: Path) -> None:
    host, clock = make_host(tmp_path, "rhel-ssh")
    host.apply_reset("Nmi")
    run_for(clock, 17)  # into the vmcore
    assert state(host) is HostState.DUMPING
    directory = host.dump_directory
    assert directory is not None
    host.apply_reset("ForceOff")
    listing = {p.name: p.stat().st_size for p in directory.iterdir()}
    assert "vmcore-incomplete" in listing
    run_for(clock, 120)
    assert state(host) is HostState.OFF
    assert {p.name: p.stat().st_size for p in directory.iterdir()} == listing  # not one byte more
    host.apply_reset("On")
    assert state(host) is HostState.REBOOTING
    run_for(clock, 30.25)
    assert state(host) is HostState.RUNNING


def test_stall_leaves_the_host_dumping_until_a_power_cycle(tmp_path: Path) -> None:
    host, clock = make_host(tmp_path)
    host.set_faults({"dump_stall": True})
    host.apply_reset("Nmi")
    run_for(clock, 300)
    assert state(host) is HostState.DUMPING and host.dump_status == "stalled"
    assert host.dump_directory is not None
    names = sorted(p.name for p in host.dump_directory.iterdir())
    assert names == ["vmcore-dmesg.txt", "vmcore-incomplete"]
    host.apply_reset("PowerCycle")
    run_for(clock, 31)
    assert state(host) is HostState.RUNNING


def test_disk_full_fails_the_dump_and_reboots(tmp_path: Path) -> None:
    host, clock = make_host(tmp_path, "suse")
    host.set_faults({"disk_full": True})
    host.apply_reset("Nmi")
    run_for(clock, 60)
    assert state(host) is HostState.RUNNING and host.dump_status == "failed"
    assert host.dump_directory is not None
    readme = (host.dump_directory / "README.txt").read_text()
    assert "saved successfully" not in readme and "failed" in readme


def test_no_reboot_keeps_the_host_down_until_the_bmc_cycles_it(tmp_path: Path) -> None:
    host, clock = make_host(tmp_path)
    host.set_faults({"no_reboot": True})
    host.apply_reset("Nmi")
    run_for(clock, 300)
    assert state(host) is HostState.REBOOTING and host.dump_status == "complete"
    host.apply_reset("PowerCycle")  # what oob crash --recover does
    run_for(clock, 30.25)
    assert state(host) is HostState.RUNNING


def test_nmi_ignored_leaves_the_host_hung(tmp_path: Path) -> None:
    host, clock = make_host(tmp_path)
    host.set_faults({"nmi_ignored": True})
    host.set_state("hung")
    host.apply_reset("Nmi")
    run_for(clock, 60)
    assert (host.state, host.nmi_count, host.dump_directory) == (HostState.HUNG, 1, None)


def test_a_second_crash_in_the_same_minute_gets_its_own_directory(tmp_path: Path) -> None:
    host, clock = make_host(tmp_path, "debian", reboot_time=1.0)
    seen = []
    for _ in range(2):
        host.apply_reset("Nmi")
        run_for(clock, 25)
        assert state(host) is HostState.RUNNING
        seen.append(host.dump_directory)
    assert seen[0] != seen[1] and all(d is not None and d.is_dir() for d in seen)


def test_network_layouts_name_the_host() -> None:
    # identities come from the layout: the host's address, or (SUSE >= 1.9) its name
    for layout, prefix in (("rhel-nfs", "127.0.1.9-"), ("suse-ssh", "web01-"), ("debian-nfs", "127.0.1.9-")):
        clock = ManualClock()
        target = Path("/nonexistent")  # only names are computed here
        host = SimulatedHost(
            "web01", clock=clock, config=HostConfig(address="127.0.1.9", layout=layout, dump_target=target)
        )
        writer = CrashKernel(host)._new_writer()
        assert writer.directory_name().startswith(prefix), layout


def test_host_states_that_can_be_set(tmp_path: Path) -> None:
    host, _ = make_host(tmp_path)
    assert host.set_state("running") is HostState.RUNNING  # already: nothing to do
    host.set_state("hung")
    assert host.set_state("running") is HostState.RUNNING  # a hang can pass by itself
    host.apply_reset("ForceOff")
    with pytest.raises(HostStateError, match="off"):
        host.set_state("hung")
    with pytest.raises(HostStateError, match="not 'dumping'"):
        host.set_state("dumping")
    with pytest.raises(FaultError, match="unknown host fault"):
        host.set_faults({"kdump_armed": True})


def test_a_host_without_timers_keeps_the_old_instant_behaviour() -> None:
    host = SimulatedHost("h", clock=ManualClock())
    host.apply_reset("Nmi")
    assert state(host) is HostState.PANICKED  # no crash kernel, no time: panicked for good
    host.apply_reset("ForceRestart")
    assert state(host) is HostState.RUNNING and host.history[-1].event == "restart"
    assert HostState["PANIC"] is HostState.PANICKED  # the old name still works


def test_configuration_is_checked() -> None:
    with pytest.raises(ValueError, match="unknown dump layout"):
        HostConfig(layout="gentoo")
    with pytest.raises(ValueError):
        HostConfig(dump_size=0)
    assert HostConfig(layout="rhel").layout == "rhel-local"
