"""The mock IPMI server itself: many BMCs in one process and one loop, loopback only,
clean start and stop, and the standalone entry point."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from mocks.host import SimulatedHost
from mocks.ipmi_server import IpmiBmc, IpmiMockServer
from tests.ipmi.conftest import (
    PASSWORD,
    USER,
    driver_for,
    ipmitool,
    server_threads,
    session_closed,
    wait_until,
)

FLEET = 50


def test_fifty_bmcs_served_by_one_loop(add_bmc: Callable[..., IpmiBmc]) -> None:
    bmcs = [add_bmc("strict" if n % 2 else "always3") for n in range(FLEET)]
    assert len({bmc.port for bmc in bmcs}) == FLEET
    assert len(server_threads()) == 1  # one thread, one selector loop, fifty sockets

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(lambda bmc: ipmitool(bmc, "chassis", "power", "status"), bmcs))
    assert [s.stdout.strip() for s in statuses] == ["Chassis Power is on"] * FLEET

    def nmi(bmc: IpmiBmc) -> str:
        with driver_for(bmc) as driver:
            return driver.send_nmi().method

    with ThreadPoolExecutor(max_workers=10) as pool:
        assert list(pool.map(nmi, bmcs)) == ["ipmi"] * FLEET
    assert [bmc.nmi_count for bmc in bmcs] == [1] * FLEET
    assert wait_until(lambda: all(session_closed(bmc) for bmc in bmcs))


def test_stop_releases_thread_and_ports() -> None:
    server = IpmiMockServer().start()
    bmc = server.add_bmc(SimulatedHost("one"), username=USER, password=PASSWORD)
    port = bmc.port
    server.stop()
    server.stop()  # idempotent
    assert not server_threads()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", port))  # the port is free again
    with pytest.raises(RuntimeError):
        server.add_bmc(SimulatedHost("two"), username=USER, password=PASSWORD)


def test_bmcs_can_be_added_and_removed_while_serving(ipmi_server: IpmiMockServer) -> None:
    first = ipmi_server.add_bmc(SimulatedHost("first"), username=USER, password=PASSWORD)
    second = ipmi_server.add_bmc(
        SimulatedHost("second"), username=USER, password=PASSWORD, address="127.0.0.2"
    )
    assert second.address == "127.0.0.2"
    first_fd = first.serversocket.fileno()
    ipmi_server.remove_bmc(first)
    # the next socket usually gets the removed one's descriptor number: the loop must
    # watch the new socket, not take it for the one it already knew
    third = ipmi_server.add_bmc(SimulatedHost("third"), username=USER, password=PASSWORD, address="127.0.0.3")
    print(f"removed descriptor {first_fd}, new one {third.serversocket.fileno()}")
    assert ipmi_server.bmcs == [second, third]
    assert ipmitool(third, "chassis", "power", "status").returncode == 0
    assert ipmitool(second, "chassis", "power", "status").returncode == 0


@pytest.mark.parametrize("address", ["0.0.0.0", "192.0.2.10", "::", "example.org"])
def test_binds_to_loopback_only(ipmi_server: IpmiMockServer, address: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        ipmi_server.add_bmc(SimulatedHost("x"), username=USER, password=PASSWORD, address=address)


def test_unknown_fault_and_cipher_mode_are_refused(
    add_bmc: Callable[..., IpmiBmc], ipmi_server: IpmiMockServer
) -> None:
    with pytest.raises(ValueError, match="known: down, drop_after_apply"):
        add_bmc().set_fault("slow")
    with pytest.raises(ValueError, match="cipher_mode"):
        ipmi_server.add_bmc(SimulatedHost("x"), username=USER, password=PASSWORD, cipher_mode="any")  # type: ignore[arg-type]


def test_standalone_server_with_fifty_bmcs() -> None:
    env = {**os.environ, "IPMI_PASSWORD": PASSWORD}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mocks.ipmi_server", "--count", str(FLEET), "--username", USER],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            if line.strip() == "ready":
                break
            lines.append(line.split())
        assert len(lines) == FLEET and all(address == "127.0.0.1" for _, address, _ in lines)
        bmcs = [_Endpoint(name, address, int(port)) for name, address, port in lines]
        for bmc in (bmcs[0], bmcs[-1]):
            assert ipmitool(bmc, "chassis", "power", "diag").returncode == 0  # type: ignore[arg-type]
            assert ipmitool(bmc, "chassis", "power", "status").stdout.strip() == "Chassis Power is on"  # type: ignore[arg-type]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


class _Endpoint:
    """Just enough of an IpmiBmc for the ipmitool helper."""

    def __init__(self, name: str, address: str, port: int) -> None:
        self.name, self.address, self.port = name, address, port
