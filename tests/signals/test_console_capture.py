"""ConsoleCapture against the mock BMC's Serial-over-LAN: a crashed host's console recorded to a
bounded 0600 file, its milestones recognised, the console always deactivated and the session closed."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mocks.crashkernel import CrashKernel
from mocks.host import HostConfig, RealClock, SimulatedHost
from mocks.ipmi_server import IpmiBmc, IpmiMockServer
from mocks.scheduler import Scheduler
from oob.model import BmcConfig, Host
from oob.safetext import is_printable
from oob.signals.console import (
    BoundedFile,
    ConsoleCapture,
    LineWatcher,
    Milestone,
    MilestoneKind,
    console_path,
    console_supported,
    create_console_file,
)
from tests.ipmi.conftest import PASSWORD, USER, wait_until
from tests.ipmi.test_sol_ipmitool import SolTerminal

SCALE = 0.02
M = MilestoneKind


@pytest.fixture
def scheduler() -> Iterator[Scheduler]:
    timers = Scheduler(RealClock())
    try:
        yield timers
    finally:
        timers.stop()


@pytest.fixture
def server() -> Iterator[IpmiMockServer]:
    mock = IpmiMockServer().start()
    try:
        yield mock
    finally:
        mock.stop()


@pytest.fixture
def make_bmc(server: IpmiMockServer, scheduler: Scheduler, tmp_path: Path) -> Callable[..., IpmiBmc]:
    """A mock IPMI BMC whose host crashes, dumps (into tmp_path/crash) and reboots after an NMI."""

    def make(name: str = "node1", **config: Any) -> IpmiBmc:
        target = tmp_path / "crash"
        target.mkdir(exist_ok=True)
        host = SimulatedHost(
            name, scale=SCALE, timers=scheduler, config=HostConfig(dump_target=target, **config)
        )
        CrashKernel(host)
        return server.add_bmc(host, username=USER, password=PASSWORD)

    return make


def oob_host(bmc: IpmiBmc, **bmc_config: object) -> Host:
    settings: dict[str, object] = {
        "kind": "ipmi",
        "address": bmc.address,
        "username": USER,
        "ipmi_port": bmc.port,
        "timeout": 2.0,
    }
    settings.update(bmc_config)
    return Host(name=bmc.name, bmc=BmcConfig(**settings))  # type: ignore[arg-type]


def capture_for(bmc: IpmiBmc, directory: Path, **options: object) -> ConsoleCapture:
    return ConsoleCapture(oob_host(bmc), PASSWORD, directory=directory, **options)  # type: ignore[arg-type]


def crash_and_record(bmc: IpmiBmc, capture: ConsoleCapture) -> None:
    """NMI the host; return once it has rebooted and its login prompt has reached the capture."""
    assert capture.start(), capture.warning
    bmc.host.apply_reset("Nmi")
    assert bmc.host.wait_for("running", 10)  # type: ignore[attr-defined]
    assert wait_until(lambda: "login:" in capture.result().last_lines[-1], timeout=5)


def closed(bmc: IpmiBmc) -> bool:
    """Every session closed and the console deactivated."""
    return not bmc.sessions and not bmc.sol.active


# -- a whole crash --------------------------------------------------------------------------


def test_a_crash_is_recorded_with_its_milestones_and_everything_is_closed(
    make_bmc: Callable[..., IpmiBmc], tmp_path: Path
) -> None:
    bmc = make_bmc()
    seen: list[Milestone] = []
    capture = capture_for(bmc, tmp_path / "consoles", on_milestone=seen.append)
    crash_and_record(bmc, capture)
    result = capture.stop()

    assert [m.kind for m in result.milestones] == [
        M.PANIC,
        M.CRASH_KERNEL,
        M.KDUMP_SAVING,
        M.KDUMP_SAVED,
        M.REBOOTING,
    ]
    assert seen == list(result.milestones)  # told as they happened, on the console's thread
    times = [m.at for m in result.milestones]
    assert times == sorted(times) and all(t.tzinfo is UTC for t in times)
    saved = result.milestone(M.KDUMP_SAVED)
    assert saved is not None and saved.line.endswith("kdump[540]: saving vmcore complete")
    assert result.problem is None and result.warning is None and result.ended == "stopped"

    assert result.path is not None and result.path.parent == tmp_path / "consoles"
    assert stat.S_IMODE(result.path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "consoles").stat().st_mode) == 0o700
    text = result.path.read_bytes()
    assert b"Command line: elfcorehdr=" in text and b"kdump[538]: saving vmcore\r\n" in text
    assert result.bytes_received == result.bytes_kept == len(text) and not result.truncated
    assert result.last_lines[-1] == "node1 login: "

    # the console was deactivated and the session closed, by oob, once each
    assert wait_until(lambda: closed(bmc))
    assert bmc.requests[(6, 0x49)] == 1 and bmc.requests[(6, 0x3C)] == 1
    assert capture.stop() == result  # idempotent


def test_kdump_failing_is_the_problem_and_its_line_is_among_the_last(
    make_bmc: Callable[..., IpmiBmc], tmp_path: Path
) -> None:
    bmc = make_bmc()
    bmc.host.set_faults({"disk_full": True})  # type: ignore[attr-defined]
    capture = capture_for(bmc, tmp_path)
    crash_and_record(bmc, capture)
    result = capture.stop()
    assert result.milestone(M.KDUMP_FAILED) is not None and result.milestone(M.KDUMP_SAVED) is None
    assert result.problem == "kdump: saving vmcore failed"
    assert any("saving vmcore failed, exitcode:1" in line for line in result.last_lines)
    assert wait_until(lambda: closed(bmc))


def test_no_crash_kernel_the_console_says_so(make_bmc: Callable[..., IpmiBmc], tmp_path: Path) -> None:
    bmc = make_bmc(panic_timeout=5.0)
    bmc.host.set_faults({"kdump_not_armed": True})  # type: ignore[attr-defined]
    capture = capture_for(bmc, tmp_path)
    crash_and_record(bmc, capture)
    result = capture.stop()
    assert [m.kind for m in result.milestones] == [M.PANIC, M.REBOOTING]
    assert result.problem == "the kernel panicked but the crash kernel did not boot"
    assert any("end Kernel panic - not syncing: NMI: Not continuing" in line for line in result.last_lines)


def test_debian_kdump_tools_lines_are_recognised(make_bmc: Callable[..., IpmiBmc], tmp_path: Path) -> None:
    bmc = make_bmc(layout="debian")
    capture = capture_for(bmc, tmp_path)
    crash_and_record(bmc, capture)
    result = capture.stop()
    saving, saved = result.milestone(M.KDUMP_SAVING), result.milestone(M.KDUMP_SAVED)
    assert saving is not None and "running makedumpfile" in saving.line
    assert saved is not None and "kdump-tools: saved vmcore in /var/crash/" in saved.line
    assert result.problem is None


def test_stopping_mid_dump_deactivates_and_closes(make_bmc: Callable[..., IpmiBmc], tmp_path: Path) -> None:
    """What Ctrl-C does: the runbook's finally stops the capture while the host still dumps."""
    bmc = make_bmc(dump_rate=4096.0)  # 256 s of dump at scale 1: still writing when we stop
    capture = capture_for(bmc, tmp_path)
    assert capture.start()
    bmc.host.apply_reset("Nmi")
    assert capture.wait_for(M.KDUMP_SAVING, 10) is not None
    result = capture.stop()
    assert result.ended == "stopped" and result.milestone(M.KDUMP_SAVED) is None
    assert result.problem == "kdump started saving but did not say it finished"
    assert wait_until(lambda: closed(bmc))
    assert bmc.requests[(6, 0x49)] == 1


def test_the_bmc_deactivating_the_console_ends_it_with_a_warning(
    make_bmc: Callable[..., IpmiBmc], tmp_path: Path
) -> None:
    from tests.ipmi.conftest import ipmitool

    bmc = make_bmc()
    capture = capture_for(bmc, tmp_path)
    assert capture.start()
    assert ipmitool(bmc, "sol", "deactivate").returncode == 0  # someone else deactivates it
    assert wait_until(lambda: capture.result().ended == "deactivated")
    # oob's own session is closed without waiting for stop()
    assert wait_until(lambda: not bmc.sessions)
    result = capture.stop()
    assert result.warning is not None and "ended early" in result.warning
    assert bmc.requests[(6, 0x49)] == 1  # only the other session's: oob had nothing left to deactivate


# -- when it cannot start: a warning, never an exception ---------------------------------------


def test_a_console_in_use_elsewhere_is_left_alone(make_bmc: Callable[..., IpmiBmc], tmp_path: Path) -> None:
    bmc = make_bmc()
    terminal = SolTerminal(bmc)  # an engineer's ipmitool has the console
    try:
        assert terminal.read_until(b"SOL Session operational")
        capture = capture_for(bmc, tmp_path)
        assert not capture.start()
        assert capture.warning is not None and "already open in another session" in capture.warning
        result = capture.stop()
        assert result.path is None and result.problem is None and not list(tmp_path.glob("*.console.log"))
        assert bmc.sol.active and len(bmc.sessions) == 1  # the engineer's console goes on
        terminal.type(b"~.")
        assert terminal.wait() == 0
    finally:
        terminal.close()
    assert wait_until(lambda: closed(bmc))


def test_an_unreachable_bmc_is_a_warning_and_leaves_no_file(
    make_bmc: Callable[..., IpmiBmc], tmp_path: Path
) -> None:
    bmc = make_bmc()
    bmc.set_fault("down")
    capture = ConsoleCapture(oob_host(bmc, timeout=0.5), PASSWORD, directory=tmp_path)
    assert not capture.start()
    assert capture.warning is not None and "serial console not available" in capture.warning
    assert not list(tmp_path.glob("*.console.log"))
    assert capture.stop().path is None


def test_a_wrong_password_is_a_warning_without_the_password(
    make_bmc: Callable[..., IpmiBmc], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bmc = make_bmc()
    wrong = "not-the-" + PASSWORD
    caplog.set_level(logging.DEBUG)
    capture = ConsoleCapture(oob_host(bmc), wrong, directory=tmp_path)
    assert not capture.start()
    assert capture.warning is not None and "password" in capture.warning
    everything = capture.warning + repr(capture) + repr(capture.stop()) + caplog.text
    assert wrong not in everything and PASSWORD not in everything
    assert bmc.sol.activations == 0 and not list(tmp_path.glob("*.console.log"))


def test_a_redfish_only_host_has_no_console(tmp_path: Path) -> None:
    host = Host(name="r1", bmc=BmcConfig(kind="ilo", address="127.0.0.1", username=USER))
    assert not console_supported(host)
    capture = ConsoleCapture(host, PASSWORD, directory=tmp_path)
    assert not capture.start()
    assert capture.warning is not None and "no IPMI" in capture.warning


# -- the file -----------------------------------------------------------------------------


def test_the_file_keeps_the_end_within_its_bound(make_bmc: Callable[..., IpmiBmc], tmp_path: Path) -> None:
    bmc = make_bmc()
    capture = capture_for(bmc, tmp_path, max_bytes=1024)
    crash_and_record(bmc, capture)
    result = capture.stop()
    assert result.path is not None
    kept = result.path.read_bytes()
    assert len(kept) == result.bytes_kept <= 1024 < result.bytes_received
    assert result.truncated and kept.endswith(b"node1 login: ")
    # milestones come from everything received, not just what the file kept
    assert result.milestone(M.PANIC) is not None and b"Kernel panic" not in kept


def test_bounded_file_keeps_exactly_the_last_bytes(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    bounded = BoundedFile(fd, 100)
    stream = bytes(range(256)) * 10
    for start in range(0, len(stream), 37):
        bounded.write(stream[start : start + 37])
    bounded.write(stream[:300])  # one piece larger than the whole bound
    bounded.close()
    kept = (tmp_path / "f").read_bytes()
    assert 0 < len(kept) <= 100 and (stream + stream[:300]).endswith(kept)
    assert bounded.written == len(stream) + 300


def test_names_are_safe_dated_and_never_reused(tmp_path: Path) -> None:
    when = datetime(2026, 11, 30, 5, 7, 9, tzinfo=UTC)
    assert console_path(tmp_path, "node1", when).name == "node1-20261130T050709Z.console.log"
    assert console_path(tmp_path, "../etc/x y", when).name == "_etc_x_y-20261130T050709Z.console.log"
    first, fd1 = create_console_file(tmp_path / "c", "node1", when)
    second, fd2 = create_console_file(tmp_path / "c", "node1", when)
    os.close(fd1)
    os.close(fd2)
    assert first != second and second.name == "node1-20261130T050709Z-2.console.log"
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in (first, second))


def test_a_symlinked_console_directory_is_refused(make_bmc: Callable[..., IpmiBmc], tmp_path: Path) -> None:
    bmc = make_bmc()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "consoles").symlink_to(tmp_path / "elsewhere")
    capture = capture_for(bmc, tmp_path / "consoles")
    assert not capture.start()
    assert capture.warning is not None and "symlink" in capture.warning
    assert wait_until(lambda: not bmc.sessions and bmc.sol.activations == 0)  # the console was never opened


# -- hostile bytes ------------------------------------------------------------------------


def test_control_characters_are_stored_raw_and_shown_escaped(
    make_bmc: Callable[..., IpmiBmc], tmp_path: Path
) -> None:
    bmc = make_bmc()
    capture = capture_for(bmc, tmp_path)
    assert capture.start()
    hostile = b"\x1b]0;owned\x07\x1b[2J\x1b[31mKernel panic - not syncing: \x9b6n NMI\x1b[0m\r\nnext\r\n"
    bmc.host.console.write(hostile)  # type: ignore[attr-defined]
    assert capture.wait_for(M.PANIC, 5) is not None
    result = capture.stop()
    assert result.path is not None and hostile in result.path.read_bytes()
    assert all(is_printable(line) for line in result.last_lines)
    panic = result.milestone(M.PANIC)
    assert panic is not None and is_printable(panic.line) and "\x1b" not in panic.line


def test_an_endless_line_is_cut_and_counted_once() -> None:
    watcher = LineWatcher(keep=5, now=lambda: datetime.now(UTC))
    watcher.feed(b"A" * 10_000)
    watcher.feed(b"\nKernel panic - not syncing: NMI: Not continuing\n" * 3)
    assert all(len(line) <= 4096 for line in watcher.lines)
    assert [m.kind for m in watcher.milestones] == [M.PANIC]  # each milestone once
    assert len(watcher.lines) == 5


def test_a_hung_hosts_reports_reach_the_console_before_its_panic(
    make_bmc: Callable[..., IpmiBmc], tmp_path: Path
) -> None:
    bmc = make_bmc(hang_kind="softlockup")
    bmc.host.hang()  # type: ignore[attr-defined]
    capture = capture_for(bmc, tmp_path)
    crash_and_record(bmc, capture)
    result = capture.stop()
    assert result.path is not None
    text = result.path.read_text()
    lockup, panic = text.find("watchdog: BUG: soft lockup - CPU#"), text.find("Kernel panic - not syncing")
    assert -1 < lockup < panic
    assert "NIC Link is Up" not in text  # the host's old chatter is not replayed


def test_keepalive_finds_the_console_still_ours(make_bmc: Callable[..., IpmiBmc], tmp_path: Path) -> None:
    bmc = make_bmc()
    capture = capture_for(bmc, tmp_path, keepalive=0.05)
    crash_and_record(bmc, capture)
    assert wait_until(lambda: bmc.requests[(6, 0x4B)] >= 3)  # several checks went by
    result = capture.stop()
    assert result.ended == "stopped" and result.warning is None and result.problem is None
    assert wait_until(lambda: closed(bmc))


def test_events_carry_what_the_renderers_need(make_bmc: Callable[..., IpmiBmc], tmp_path: Path) -> None:
    from oob.events import EventKind, Level
    from oob.signals.console import milestone_event, recording_event, saved_event, unavailable_event

    bmc = make_bmc()
    bmc.host.set_faults({"disk_full": True})  # type: ignore[attr-defined]
    events = []
    capture = capture_for(bmc, tmp_path, on_milestone=lambda m: events.append(milestone_event(bmc.name, m)))
    crash_and_record(bmc, capture)
    result = capture.stop()
    started, saved = recording_event(capture), saved_event(result)
    assert started.kind is EventKind.CONSOLE_RECORDING and started.data["path"] == str(result.path)
    assert [e.data["milestone"] for e in events] == [
        "panic",
        "crash_kernel",
        "kdump_saving",
        "kdump_failed",
        "rebooting",
    ]
    assert events[3].level is Level.WARNING
    record = saved.to_dict()
    assert record["event"] == "console_saved" and record["problem"] == "kdump: saving vmcore failed"
    assert record["level"] == "warning" and "saving vmcore failed" in "\n".join(record["last_lines"])
    assert "last_lines" not in saved_event(result, show_lines=False).to_dict()

    refused = ConsoleCapture(Host(name="r1", bmc=BmcConfig(kind="ilo", address="x")), PASSWORD)
    assert not refused.start()
    assert unavailable_event(refused).to_dict()["event"] == "console_unavailable"
