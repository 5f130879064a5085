"""Two IPMI sessions with one BMC at once, as the serial console and the NMI need: the second one
gets a socket of its own (pyghmi routes answers by socket), and pyghmi's I/O thread must be woken
to read it, or the second login hears nothing."""

from __future__ import annotations

from collections.abc import Callable

from mocks.ipmi_server import IpmiBmc
from oob.drivers.ipmi.client import IpmiClient
from tests.ipmi.conftest import PASSWORD, USER, driver_for, wait_until


def client(bmc: IpmiBmc) -> IpmiClient:
    return IpmiClient(bmc.address, bmc.port, USER, PASSWORD, timeout=3, connect_attempts=1)


def test_a_second_session_with_the_same_bmc_logs_in(add_bmc: Callable[..., IpmiBmc]) -> None:
    from pyghmi.ipmi.private import session as pyghmi_session

    bmc = add_bmc()
    # one session more than pyghmi has sockets: the last one needs a new socket, whatever
    # earlier tests left in pyghmi's (process-wide) pool
    clients = [client(bmc) for _ in range(len(pyghmi_session.Session.socketpool) + 2)]
    sockets_before = len(pyghmi_session.iosockets)
    try:
        for each in clients:
            each.open()
        assert len(pyghmi_session.iosockets) > sockets_before
        assert len(bmc.sessions) == len(clients)
        for each in clients:
            assert each.read(6, 0x01, what="device id").code == 0
    finally:
        for each in clients:
            each.close()
    assert wait_until(lambda: not bmc.sessions)


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
