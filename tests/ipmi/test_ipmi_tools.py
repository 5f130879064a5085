"""The standard tools of the field accept the mock BMC: ipmitool and FreeIPMI, over lanplus.

Passwords never appear on a command line: ipmitool reads $IPMI_PASSWORD (``-E``), FreeIPMI
reads a ``--config-file`` created with mode 0600.
"""

from __future__ import annotations

import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mocks.ipmi_server import IpmiBmc
from tests.ipmi.conftest import freeipmi, ipmitool, session_closed, wait_until

CIPHER_MODES = ["strict", "always3"]


@pytest.mark.parametrize("cipher_mode", CIPHER_MODES)
def test_ipmitool_power_status_and_diag(add_bmc: Callable[..., IpmiBmc], cipher_mode: str) -> None:
    bmc = add_bmc(cipher_mode)
    status = ipmitool(bmc, "chassis", "power", "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.strip() == "Chassis Power is on"
    assert bmc.nmi_count == 0

    for expected in (1, 2):  # each NMI raises the count by exactly one
        diag = ipmitool(bmc, "chassis", "power", "diag")
        assert diag.returncode == 0, diag.stderr
        assert "Chassis Power Control: Diag" in diag.stdout
        assert bmc.nmi_count == expected
    assert bmc.chassis_controls == {0x04: 2}
    assert wait_until(lambda: session_closed(bmc))


def test_ipmitool_power_off_then_status(add_bmc: Callable[..., IpmiBmc]) -> None:
    bmc = add_bmc()
    assert ipmitool(bmc, "chassis", "power", "off").returncode == 0
    assert ipmitool(bmc, "chassis", "power", "status").stdout.strip() == "Chassis Power is off"


def test_ipmitool_wrong_user_fails_fast(add_bmc: Callable[..., IpmiBmc]) -> None:
    bmc = add_bmc()
    started = time.monotonic()
    proc = ipmitool(bmc, "chassis", "power", "status", user="nobody")
    assert proc.returncode != 0 and "Unable to establish IPMI v2 / RMCP+ session" in proc.stderr
    assert time.monotonic() - started < 2.0
    assert bmc.auth_failures == 1 and bmc.request_count == 0


def test_freeipmi_config_file_is_private(freeipmi_config: Callable[..., Path]) -> None:
    assert stat.S_IMODE(freeipmi_config().stat().st_mode) == 0o600


@pytest.mark.parametrize("cipher_mode", CIPHER_MODES)
def test_ipmipower_stat_and_pulse(
    add_bmc: Callable[..., IpmiBmc], freeipmi_config: Callable[..., Path], cipher_mode: str
) -> None:
    bmc, config = add_bmc(cipher_mode), freeipmi_config()
    status = freeipmi("ipmipower", bmc, config, "--stat")
    assert status.returncode == 0, status.stderr
    assert status.stdout.strip() == f"{bmc.address}: on"

    pulse = freeipmi("ipmipower", bmc, config, "--pulse")
    assert pulse.returncode == 0, pulse.stderr
    assert pulse.stdout.strip() == f"{bmc.address}: ok"
    assert bmc.nmi_count == 1 and bmc.chassis_controls == {0x04: 1}


def test_ipmi_chassis_diagnostic_interrupt(
    add_bmc: Callable[..., IpmiBmc], freeipmi_config: Callable[..., Path]
) -> None:
    bmc, config = add_bmc(), freeipmi_config()
    for expected in (1, 2):
        proc = freeipmi("ipmi-chassis", bmc, config, "--chassis-control=DIAGNOSTIC-INTERRUPT")
        assert proc.returncode == 0, proc.stderr
        assert bmc.nmi_count == expected
    assert bmc.chassis_controls == {0x04: 2}


def test_freeipmi_wrong_user_fails_fast(
    add_bmc: Callable[..., IpmiBmc], freeipmi_config: Callable[..., Path]
) -> None:
    bmc = add_bmc()
    started = time.monotonic()
    proc = freeipmi("ipmipower", bmc, freeipmi_config(user="nobody"), "--stat")
    assert proc.stdout.strip() == f"{bmc.address}: username invalid"
    assert time.monotonic() - started < 2.0


def test_a_bmc_past_descriptor_1024_still_answers(add_bmc: Callable[..., IpmiBmc]) -> None:
    """select(2) cannot watch descriptors >= 1024: a fleet of ~300 BMCs reaches them."""
    import os

    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        bmc = add_bmc()
        assert bmc.serversocket.fileno() >= 1024
        status = ipmitool(bmc, "chassis", "power", "status")
        assert status.returncode == 0, status.stderr
        assert status.stdout.strip() == "Chassis Power is on"
    finally:
        for fd in filler:
            os.close(fd)
