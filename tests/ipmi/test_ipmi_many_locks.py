"""A run over hundreds of hosts holds two lock files per host, and an IPMI session's socket
is made after them: it works whatever its descriptor's number (an ``OobSession`` waits on
its socket with poll(2); pyghmi's I/O thread, which waits with select(2), could not see a
descriptor at or above 1024, and oob keeps its lock files up there for libraries that do)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from mocks.ipmi_server import IpmiBmc
from oob.fdlimit import FD_SETSIZE
from oob.locks import host_lock
from tests.ipmi.conftest import PASSWORD, USER

REPO = Path(__file__).resolve().parents[2]


def test_lock_files_are_kept_above_the_select_range(tmp_path: Path) -> None:
    import os

    locks = tmp_path / "locks"
    with host_lock(locks, "web01", bmc="192.0.2.1"):
        held = []
        for name in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{name}")
            except FileNotFoundError:  # the listing's own descriptor, closed by now
                continue
            if target.startswith(str(locks)):
                held.append(int(name))
    assert len(held) == 2 and all(fd >= FD_SETSIZE for fd in held)


def test_an_ipmi_power_read_while_1200_hosts_are_locked(
    add_bmc: Callable[..., IpmiBmc], tmp_path: Path
) -> None:
    bmc = add_bmc()
    # a process of its own: pyghmi's sockets are made fresh there, after the locks
    script = textwrap.dedent(
        f"""
        from contextlib import ExitStack
        from pathlib import Path

        from oob.drivers.ipmi.driver import IpmiDriver
        from oob.fdlimit import raise_open_files_limit
        from oob.locks import host_lock
        from oob.model import BmcConfig, Host

        raise_open_files_limit()
        locks = Path({str(tmp_path / "locks")!r})
        with ExitStack() as held:
            for i in range(600):
                held.enter_context(host_lock(locks, f"host{{i}}", bmc=f"bmc{{i}}"))
            host = Host("node", bmc=BmcConfig(kind="ipmi", address={bmc.address!r}, username={USER!r},
                                              ipmi_port={bmc.port}, methods=("ipmi",), timeout=5.0))
            with IpmiDriver(host, {PASSWORD!r}, connect_attempts=1) as driver:
                print(driver.power_state().value)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "On"
