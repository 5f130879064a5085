"""The mock BMC's Serial-over-LAN against the real ipmitool: ``sol activate`` in a pseudo-terminal
shows the crash kernel booting and kdump saving; ``~.`` and ``sol deactivate`` close it all."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import mocks.ipmi_sol as ipmi_sol
from mocks.crashkernel import CrashKernel
from mocks.host import HostConfig, RealClock, SimulatedHost
from mocks.ipmi_server import IpmiBmc, IpmiMockServer
from mocks.scheduler import Scheduler
from tests.ipmi.conftest import PASSWORD, USER, ipmitool, require_tool, wait_until

#: a crash at this scale takes about 1.5 s: crash kernel 0.3 s, dump 0.35 s, reboot 0.6 s
SCALE = 0.02


class SolTerminal:
    """``ipmitool -I lanplus ... -E sol activate`` on a pseudo-terminal (password in $IPMI_PASSWORD)."""

    def __init__(self, bmc: IpmiBmc) -> None:
        argv = [require_tool("ipmitool"), "-I", "lanplus", "-H", bmc.address, "-p", str(bmc.port)]
        argv += ["-U", USER, "-E", "sol", "activate"]
        environ = {k: v for k, v in os.environ.items() if not k.startswith("IPMI")}
        environ["IPMI_PASSWORD"] = PASSWORD
        self._master, slave = pty.openpty()
        self.process = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=environ, close_fds=True
        )
        os.close(slave)
        self.output = b""

    def read_until(self, wanted: bytes, timeout: float = 15.0) -> bool:
        """Read the terminal until ``wanted`` appeared (True) or ``timeout`` seconds passed."""
        deadline = time.monotonic() + timeout
        while wanted not in self.output and time.monotonic() < deadline:
            ready, _, _ = select.select([self._master], [], [], 0.1)
            if ready:
                try:
                    self.output += os.read(self._master, 65536)
                except OSError:  # the other side closed: ipmitool ended
                    break
        return wanted in self.output

    def type(self, keys: bytes) -> None:
        os.write(self._master, keys)

    def wait(self, timeout: float = 10.0) -> int | None:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        os.close(self._master)


@pytest.fixture
def crash_host(tmp_path: Path) -> Iterator[SimulatedHost]:
    """A running host with a crash kernel and a dump target: an NMI crashes, dumps and reboots it."""
    scheduler = Scheduler(RealClock())
    host = SimulatedHost(
        "node1", scale=SCALE, timers=scheduler, config=HostConfig(dump_target=tmp_path / "crash")
    )
    (tmp_path / "crash").mkdir()
    CrashKernel(host)
    try:
        yield host
    finally:
        scheduler.stop()


@pytest.fixture
def sol_bmc(crash_host: SimulatedHost) -> Iterator[IpmiBmc]:
    server = IpmiMockServer().start()
    try:
        yield server.add_bmc(crash_host, username=USER, password=PASSWORD)
    finally:
        server.stop()


@pytest.fixture
def terminal(sol_bmc: IpmiBmc) -> Iterator[SolTerminal]:
    term = SolTerminal(sol_bmc)
    try:
        assert term.read_until(b"SOL Session operational"), term.output
        assert wait_until(lambda: sol_bmc.sol.active)
        yield term
    finally:
        term.close()


def test_ipmitool_sees_the_crash_kernel_and_kdump_then_closes_everything(
    sol_bmc: IpmiBmc, crash_host: SimulatedHost, terminal: SolTerminal
) -> None:
    # Enter on a running host: getty's prompt again.  ipmitool reads the keyboard only once its
    # SOL loop runs, a moment after it says "operational": on a loaded machine the first Enter
    # can come before that, so it is pressed again (each press must arrive exactly once)
    presses = 0
    while presses < 3:
        terminal.type(b"\r")
        presses += 1
        if terminal.read_until(b"node1 login: ", timeout=5.0):
            break
    assert b"node1 login: " in terminal.output
    assert sol_bmc.sol.typed == presses
    before = len(terminal.output)
    crash_host.apply_reset("Nmi")
    assert terminal.read_until(b"on an x86_64\r\n\r\nnode1 login: "), terminal.output[-2000:]
    shown = terminal.output[before:].decode()
    # in the order a real console shows them: the panic, the crash kernel, kdump, the reboot
    marks = [
        "Kernel panic - not syncing: NMI: Not continuing",
        "Command line: elfcorehdr=",
        "kdump[538]: saving vmcore\r\n",
        "kdump[540]: saving vmcore complete",
        "reboot: Restarting system",
        "node1 login: ",
    ]
    positions = [shown.find(mark) for mark in marks]
    assert -1 not in positions, shown
    assert positions == sorted(positions)

    terminal.type(b"\r~.")
    assert terminal.read_until(b"[terminated ipmitool]")
    assert terminal.wait() == 0, terminal.output[-500:]
    # ipmitool deactivated the payload and closed its session
    assert wait_until(lambda: not sol_bmc.sessions and not sol_bmc.sol.active)
    assert sol_bmc.requests[(6, 0x49)] == 1 and sol_bmc.requests[(6, 0x3C)] == 1

    after = ipmitool(sol_bmc, "sol", "deactivate")
    assert "already de-activated" in after.stdout + after.stderr
    assert wait_until(lambda: not sol_bmc.sessions)
    assert sol_bmc.sol.activations == 1 and sol_bmc.sol.deactivations == 1


def test_sol_deactivate_from_another_session_ends_the_stream(
    sol_bmc: IpmiBmc, crash_host: SimulatedHost, terminal: SolTerminal
) -> None:
    result = ipmitool(sol_bmc, "sol", "deactivate")
    assert result.returncode == 0, result.stderr
    assert not sol_bmc.sol.active
    streamed = sol_bmc.sol.streamed
    crash_host.apply_reset("Nmi")
    assert crash_host.wait_for("running", 10)
    assert sol_bmc.sol.streamed == streamed  # nothing more goes to the deactivated console
    terminal.type(b"~.")  # escapes count right after the start too; a CR would be sent as data
    assert terminal.read_until(b"already de-activated"), terminal.output
    assert terminal.wait() == 0
    assert wait_until(lambda: not sol_bmc.sessions)
    assert sol_bmc.sol.activations == 1 and sol_bmc.sol.deactivations == 1


def test_a_second_console_is_refused_while_one_is_active(sol_bmc: IpmiBmc, terminal: SolTerminal) -> None:
    second = ipmitool(sol_bmc, "sol", "activate")  # stdin is not a terminal; it must not get that far
    assert second.returncode != 0
    assert (
        "0x80" in second.stdout + second.stderr or "already active" in (second.stdout + second.stderr).lower()
    )
    assert sol_bmc.sol.refused == 1 and sol_bmc.sol.activations == 1
    terminal.type(b"\r~.")
    assert terminal.wait() == 0
    assert wait_until(lambda: not sol_bmc.sessions)


def test_a_console_that_never_acks_is_dropped(
    sol_bmc: IpmiBmc, crash_host: SimulatedHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oob.drivers.ipmi.client import IpmiClient

    monkeypatch.setattr(ipmi_sol, "RESEND_AFTER", 0.05)
    client = IpmiClient(sol_bmc.address, sol_bmc.port, USER, PASSWORD, timeout=5, connect_attempts=1)
    client.open()
    try:
        # activated, and then deaf: no SOL handler, so nothing is ever ACKed
        assert client.read(6, 0x48, (1, 1, 0xC0, 0, 0, 0), what="activate").code == 0
        crash_host.console.write("one line nobody reads\n")
        assert wait_until(lambda: not sol_bmc.sol.active, timeout=5)
        assert sol_bmc.sol.deactivations == 1
    finally:
        client.close()
    assert wait_until(lambda: not sol_bmc.sessions)
