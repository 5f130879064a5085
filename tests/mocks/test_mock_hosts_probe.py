"""Each simulated host's SSH-like probe listener, seen through real sockets and oob's probe."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from mocks.fleet import Fleet
from mocks.liveness import BANNER
from oob.inventory import load_inventory
from oob.model import Host
from oob.probe import probe_host

pytest_plugins = ["mocks.pytest_plugin"]

Start = Callable[..., Fleet]


def endpoint(fleet: Fleet, name: str) -> tuple[str, int]:
    probe = fleet.bmc(name).probe
    assert probe is not None
    _, address, port = probe.split(":")
    return address, int(port)


def oob_hosts(fleet: Fleet, tmp_path: Path) -> dict[str, Host]:
    return dict(load_inventory([fleet.write_inventory(tmp_path / "inventory.toml")]).hosts)


def test_each_host_has_its_own_address_and_a_banner_while_running(mock_fleet_factory: Start) -> None:
    fleet = mock_fleet_factory(["ilo5", "idrac9"], count=2)
    addresses = [endpoint(fleet, b.name)[0] for b in fleet.bmcs]
    assert addresses == ["127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4"]
    for bmc in fleet.bmcs:
        with socket.create_connection(endpoint(fleet, bmc.name), timeout=2) as conn:
            assert conn.recv(256) == BANNER == b"SSH-2.0-OpenSSH_9.6 oob-mock\r\n"


def test_a_hung_host_accepts_and_stays_silent(mock_fleet_factory: Start, tmp_path: Path) -> None:
    fleet = mock_fleet_factory(["ilo5", "openbmc"], hung=True)
    assert [b.host_state for b in fleet.bmcs] == ["hung", "hung"]
    with socket.create_connection(endpoint(fleet, "ilo5-1"), timeout=2) as conn:  # no RST: accepted
        conn.settimeout(0.3)
        with pytest.raises(TimeoutError):
            conn.recv(256)
    hosts = oob_hosts(fleet, tmp_path)
    silent = probe_host(hosts["ilo5-1"], timeout=0.3)
    assert silent.alive is False and "did not answer within 0.3 s" in silent.detail
    fleet.set_host_state("openbmc-1", "running")  # a hang that passes by itself
    healthy = probe_host(hosts["openbmc-1"], timeout=2)
    assert healthy.alive is True and "SSH-2.0-OpenSSH_9.6 oob-mock" in healthy.detail
    assert healthy.target == fleet.bmc("openbmc-1").probe


def test_many_probes_at_once_and_nothing_left_after_stop(mock_fleet_factory: Start) -> None:
    fleet = mock_fleet_factory(["dmtf"], count=10)
    fleet.set_host_state("dmtf-3", "hung")
    answers: dict[str, bytes] = {}

    def probe(name: str) -> None:
        with socket.create_connection(endpoint(fleet, name), timeout=2) as conn:
            conn.settimeout(0.5)
            try:
                answers[name] = conn.recv(256)
            except TimeoutError:
                answers[name] = b""

    threads = [threading.Thread(target=probe, args=(b.name,)) for b in fleet.bmcs for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers.pop("dmtf-3") == b"" and set(answers.values()) == {BANNER}
    where = endpoint(fleet, "dmtf-1")
    fleet.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("mock-host")]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(where, timeout=2).close()


def test_first_host_address_moves_the_hosts(mock_fleet_factory: Start) -> None:
    fleet = mock_fleet_factory(["xcc"], count=2, first_host_address="127.0.9.250")
    assert [b.host_address for b in fleet.bmcs] == ["127.0.9.250", "127.0.9.251"]
    with pytest.raises(ValueError, match="loopback"):
        mock_fleet_factory(["xcc"], first_host_address="192.0.2.1")
