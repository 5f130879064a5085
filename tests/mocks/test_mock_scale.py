"""A large fleet starts, answers and stops without leaking threads (50 BMCs of every flavour),
and serves IPMI BMCs whose sockets are past descriptor 1024 (300 of them, from a soft limit of 1024)."""

from __future__ import annotations

import os
import resource
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from mocks.bmc import MockBmc
from mocks.flavours import REDFISH_FLAVOURS
from mocks.fleet import Fleet

pytest_plugins = ["mocks.pytest_plugin"]


def _mock_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("mock-")]


def test_fifty_of_each_flavour(
    mock_fleet_factory: Callable[..., Fleet], mock_http: Callable[[Fleet], requests.Session]
) -> None:
    started = time.monotonic()
    fleet = mock_fleet_factory(sorted(REDFISH_FLAVOURS), count=50)
    assert len(fleet.bmcs) == 50 * len(REDFISH_FLAVOURS)
    assert len({b.port for b in fleet.bmcs}) == len(fleet.bmcs)
    assert len({b.fingerprint for b in fleet.bmcs}) == len(fleet.bmcs)
    assert fleet.bmc("dmtf-50").url.startswith("https://127.0.0.1:")
    # idle BMCs cost no thread: one accept loop, the control API and the hosts' probe listener
    # serve them all (the hosts' timer thread starts with the first timed step)
    assert sorted(_mock_threads()) == ["mock-bmc-accept", "mock-fleet-control", "mock-host-liveness"]
    http = mock_http(fleet)
    for bmc in fleet.bmcs:
        assert http.get(bmc.url + "/redfish/v1/", timeout=10).status_code == 200, bmc.name
    assert sum(b.requests for b in fleet.bmcs) == len(fleet.bmcs)
    http.close()
    fleet.stop()
    assert _mock_threads() == []
    assert time.monotonic() - started < 60


# -- descriptors past 1024: 300 IPMI BMCs on one server, from a soft limit of 1024


def _auth_capabilities_request() -> bytes:
    """Get Channel Authentication Capabilities (IPMI 1.5 framing, no session), as ipmitool
    sends first: channel E (this one) with the IPMI 2.0 bit, privilege Administrator."""
    body = bytes([0x81, 0x00, 0x38, 0x8E, 0x04])
    header = bytes([0x20, 0x06 << 2])
    message = header + bytes([-sum(header) & 0xFF]) + body + bytes([-sum(body) & 0xFF])
    return bytes([0x06, 0x00, 0xFF, 0x07, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, len(message)]) + message


def _answered(ports: set[int], rounds: int = 5, wait: float = 2.0) -> set[int]:
    """The ports whose BMC answered the request with completion code 0 (a few rounds:
    UDP on loopback still drops when the receive buffer overflows)."""
    answered: set[int] = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.bind(("127.0.0.1", 0))
        for _ in range(rounds):
            missing = ports - answered
            if not missing:
                break
            for port in sorted(missing):
                client.sendto(_auth_capabilities_request(), ("127.0.0.1", port))
            deadline = time.monotonic() + wait
            while answered != ports and (left := deadline - time.monotonic()) > 0:
                client.settimeout(left)
                try:
                    data, (_, port) = client.recvfrom(512)
                except TimeoutError:
                    break
                # RMCP (4) + session header (10) + rqAddr netFn chk rsAddr seq cmd, then the completion code
                if len(data) > 20 and data[19] == 0x38 and data[20] == 0x00:
                    answered.add(port)
    return answered


def test_three_hundred_ipmi_bmcs_past_descriptor_1024(
    mock_fleet_factory: Callable[..., Fleet], tmp_path: Path
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.fail(f"the hard RLIMIT_NOFILE ({hard}) is too low for this test: it needs 2048")
    fillers: list[int] = []
    try:
        # a shell's usual soft limit, most of it used: the fleet's sockets must land past 1024
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
        while len(os.listdir("/proc/self/fd")) < 1000:
            fillers.append(os.open(os.devnull, os.O_RDONLY))
        fleet = mock_fleet_factory(["ipmi"], count=300, control=None)
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard  # raised by Fleet.start
        ports = {b.ipmi_port for b in fleet.bmcs if b.ipmi_port is not None}
        assert len(ports) == 300
        assert fleet.ipmi_server is not None
        assert min(b.serversocket.fileno() for b in fleet.ipmi_server.bmcs) > 1024
        missing = ports - _answered(ports)
        assert not missing, f"{len(missing)} of 300 IPMI BMCs did not answer: ports {sorted(missing)[:10]}"
        # and a real client completes a session with the highest-numbered ones
        for bmc in fleet.bmcs[-2:]:
            status = _ipmitool(bmc, "chassis", "power", "status")
            assert status.returncode == 0, status.stderr
            assert "Chassis Power is on" in status.stdout
        usage = fleet.usage()
        assert usage["open_files"] > 1024 and usage["cpu_seconds"] > 0 and usage["peak_rss_mib"] > 0
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _ipmitool(bmc: MockBmc, *args: str) -> subprocess.CompletedProcess[str]:
    """The password travels in $IPMI_PASSWORD (-E), never on argv."""
    tool = shutil.which("ipmitool")
    if tool is None:
        pytest.fail("ipmitool is not installed: apt-get install ipmitool (scripts/test does this)")
    argv = [tool, "-I", "lanplus", "-H", bmc.address, "-p", str(bmc.ipmi_port), "-U", bmc.username, "-E"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPMI")}
    env["IPMI_PASSWORD"] = bmc.password
    return subprocess.run([*argv, *args], capture_output=True, text=True, env=env, timeout=30, check=False)


def test_latency_is_set_on_every_redfish_bmc_and_usage_is_described(
    mock_fleet_factory: Callable[..., Fleet],
) -> None:
    fleet = mock_fleet_factory(["idrac9", "ipmi"], count=2, latency_ms=40, control=None)
    assert [b.fault_dict()["latency_ms"] for b in fleet.bmcs if b.has_redfish] == [40, 40]
    usage = fleet.describe()["usage"]
    assert isinstance(usage, dict) and set(usage) == {"cpu_seconds", "peak_rss_mib", "threads", "open_files"}
    with pytest.raises(ValueError, match="latency_ms"):
        Fleet.start(vendors=["idrac9"], latency_ms=-1)


def test_every_bmc_on_an_address_of_its_own(
    mock_fleet_factory: Callable[..., Fleet], mock_http: Callable[[Fleet], requests.Session]
) -> None:
    fleet = mock_fleet_factory(["idrac9", "ipmi"], count=2, bmc_addresses="127.1.0.1", control=None)
    assert [b.address for b in fleet.bmcs] == ["127.1.0.1", "127.1.0.2", "127.1.0.3", "127.1.0.4"]
    assert fleet.bmc("idrac9-2").url.startswith("https://127.1.0.2:")
    # the certificate names the BMC's own address: verification against the fleet's CA holds
    assert mock_http(fleet).get(fleet.bmc("idrac9-2").url + "/redfish/v1/", timeout=10).status_code == 200
    status = _ipmitool(fleet.bmc("ipmi-2"), "chassis", "power", "status")
    assert status.returncode == 0 and "Chassis Power is on" in status.stdout, status.stderr
    with pytest.raises(ValueError):
        Fleet.start(vendors=["idrac9"], bmc_addresses="198.51.100.1")
