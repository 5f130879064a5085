"""Two IPMI sessions with one BMC at once, as the serial console and the NMI need: each
session has a UDP socket of its own (the BMC tells sessions apart by the client's port),
read by its own thread, and closed with it."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable

from mocks.ipmi_server import IpmiBmc
from oob.drivers.ipmi.client import IpmiClient
from oob.model import PowerState
from tests.ipmi.conftest import PASSWORD, USER, driver_for, wait_until


def client(bmc: IpmiBmc) -> IpmiClient:
    return IpmiClient(bmc.address, bmc.port, USER, PASSWORD, timeout=3, connect_attempts=1)


def test_a_second_session_with_the_same_bmc_logs_in(add_bmc: Callable[..., IpmiBmc]) -> None:
    bmc = add_bmc()
    clients = [client(bmc) for _ in range(3)]
    try:
        for each in clients:
            each.open()
        sockets = [each._require().socket for each in clients]
        assert len({sock.getsockname()[1] for sock in sockets}) == len(clients)
        assert len(bmc.sessions) == len(clients)
        for each in clients:
            assert each.read(6, 0x01, what="device id").code == 0
    finally:
        for each in clients:
            each.close()
    assert all(sock.fileno() == -1 for sock in sockets)  # closed with its session: no descriptor kept
    assert wait_until(lambda: not bmc.sessions)


def test_a_datagram_from_anyone_but_the_bmc_is_ignored(add_bmc: Callable[..., IpmiBmc]) -> None:
    """A session's socket listens on every local address: what comes from elsewhere than
    its BMC (here a well-formed-looking RMCP+ header from another loopback address) is
    dropped unread, and the session carries on."""
    bmc = add_bmc()
    with driver_for(bmc) as driver:
        session = driver._client._require()
        family = session.socket.family
        target = ("::1" if family == socket.AF_INET6 else "127.0.0.1", session.socket.getsockname()[1])
        with socket.socket(family, socket.SOCK_DGRAM) as stranger:
            for _ in range(5):
                stranger.sendto(b"\x06\x00\xff\x07\x06\x00" + bytes(30), target)
            readable = select.poll()
            readable.register(session.socket, select.POLLIN)
            assert readable.poll(5000)  # the strangers' datagrams are there to be read
            for _ in range(5):
                session._read_socket()
        assert not session.pktqueue
        assert driver.power_state() is PowerState.ON
        assert driver.send_nmi().status == 0
    assert bmc.nmi_count == 1


def test_the_nmi_goes_through_while_the_console_is_open(add_bmc: Callable[..., IpmiBmc]) -> None:
    from oob.drivers.ipmi.console import SolConsole

    bmc = add_bmc()
    received: list[bytes] = []
    console = SolConsole(bmc.address, bmc.port, USER, PASSWORD, on_data=received.append, timeout=3)
    console.start()
    try:
        assert bmc.sol.active
        with driver_for(bmc) as driver:
            driver.send_nmi()
        assert bmc.nmi_count == 1
        bmc.host.console.write("after the NMI\n")  # type: ignore[attr-defined]
        assert wait_until(lambda: b"after the NMI\r\n" in b"".join(received))
    finally:
        console.stop()
    assert wait_until(lambda: not bmc.sessions and not bmc.sol.active)


def test_stopping_the_console_wakes_its_thread(add_bmc: Callable[..., IpmiBmc]) -> None:
    """The console's thread waits on its session's socket until its next keepalive (an hour
    here): stop() must wake it (an empty datagram to that socket), not wait that long."""
    from oob.drivers.ipmi.console import SolConsole

    bmc = add_bmc()
    received: list[bytes] = []
    console = SolConsole(
        bmc.address, bmc.port, USER, PASSWORD, on_data=received.append, timeout=3, keepalive=3600
    )
    console.start()
    assert bmc.sol.active
    thread = console._thread
    assert thread is not None and thread.is_alive()
    bmc.host.console.write("ready\n")  # type: ignore[attr-defined]
    assert wait_until(lambda: b"ready" in b"".join(received))  # the thread is in its loop
    time.sleep(0.3)  # and back to waiting on the socket
    console.stop(timeout=60)
    assert not thread.is_alive()
    assert wait_until(lambda: not bmc.sessions and not bmc.sol.active)
