"""Fixtures for the IPMI tests: a mock IPMI server on loopback, BMCs with simulated hosts,
and runners for the real third-party clients (ipmitool, FreeIPMI) that keep the password
off the command line."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mocks.host import SimulatedHost
from mocks.ipmi_server import CipherMode, DeviceIdentity, IpmiBmc, IpmiMockServer
from oob.drivers.ipmi import IpmiDriver
from oob.model import BmcConfig, BmcKind, Host

USER = "admin"
#: one random password per test run: a test that leaks it into argv would be visible
PASSWORD = secrets.token_urlsafe(12)

#: tool -> the Debian package scripts/test installs it from
TOOLS = {"ipmitool": "ipmitool", "ipmipower": "freeipmi-tools", "ipmi-chassis": "freeipmi-tools"}


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Poll ``condition`` (the mock answers on its own thread); True once it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ipmi-mock-server" and t.is_alive()]


@pytest.fixture
def ipmi_server() -> Iterator[IpmiMockServer]:
    server = IpmiMockServer().start()
    try:
        yield server
    finally:
        server.stop()
    assert not server_threads(), "the IPMI mock server thread outlived stop()"


@pytest.fixture
def add_bmc(ipmi_server: IpmiMockServer) -> Callable[..., IpmiBmc]:
    """Add a BMC (with its own simulated host) to the running server."""
    counter = iter(range(1, 10_000))

    def add(cipher_mode: CipherMode = "strict", identity: DeviceIdentity | None = None) -> IpmiBmc:
        name = f"node{next(counter)}"
        return ipmi_server.add_bmc(
            SimulatedHost(name),
            username=USER,
            password=PASSWORD,
            cipher_mode=cipher_mode,
            identity=identity or DeviceIdentity(),
        )

    return add


def oob_host(bmc: IpmiBmc, *, username: str = USER, timeout: float = 5.0, kind: BmcKind = "ipmi") -> Host:
    """The inventory entry oob would have for this BMC."""
    return Host(
        name=bmc.name,
        bmc=BmcConfig(kind=kind, address=bmc.address, username=username, ipmi_port=bmc.port, timeout=timeout),
    )


def driver_for(
    bmc: IpmiBmc,
    *,
    username: str = USER,
    password: str = PASSWORD,
    timeout: float = 5.0,
    connect_attempts: int = 1,
    on_retry: Callable[[str], None] | None = None,
    kind: BmcKind = "ipmi",
) -> IpmiDriver:
    host = oob_host(bmc, username=username, timeout=timeout, kind=kind)
    return IpmiDriver(host, password, connect_attempts=connect_attempts, on_retry=on_retry)


def session_closed(bmc: IpmiBmc) -> bool:
    """Every session this BMC saw was closed by its client (Close Session received)."""
    return not bmc.sessions


# -- real third-party clients ---------------------------------------------------------------


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install {TOOLS[name]} (scripts/test does this)")
    return path


def run_tool(
    argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    assert not any(PASSWORD in arg for arg in argv), "the password must never be on a command line"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("IPMI")}
    environ.update(env or {})
    return subprocess.run(argv, capture_output=True, text=True, env=environ, timeout=timeout, check=False)


def ipmitool(
    bmc: IpmiBmc, *args: str, user: str = USER, password: str = PASSWORD, extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """``ipmitool -I lanplus ... -E``: the password travels in $IPMI_PASSWORD."""
    argv = [
        require_tool("ipmitool"),
        "-I",
        "lanplus",
        "-H",
        bmc.address,
        "-p",
        str(bmc.port),
        "-U",
        user,
        "-E",
    ]
    return run_tool([*argv, *extra, *args], env={"IPMI_PASSWORD": password})


@pytest.fixture
def freeipmi_config(tmp_path: Path) -> Callable[..., Path]:
    """A FreeIPMI ``--config-file`` (mode 0600, created so): the password stays off argv."""

    def write(user: str = USER, password: str = PASSWORD) -> Path:
        path = tmp_path / f"freeipmi-{user}.conf"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(f"username {user}\npassword {password}\ndriver-type LAN_2_0\n")
        return path

    return write


def freeipmi(tool: str, bmc: IpmiBmc, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [require_tool(tool), "--config-file", str(config), "-h", f"{bmc.address}:{bmc.port}", *args]
    return run_tool(argv)
