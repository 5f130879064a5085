"""oob's IPMI driver against mock BMCs over real UDP sockets on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import cast

import pytest

from mocks.host import HostState, SimulatedHost
from mocks.ipmi_server import DeviceIdentity, IpmiBmc
from oob.errors import ActionUnsupported, BmcAuthError, BmcRefused, BmcUnreachable, NotDelivered
from oob.model import PowerAction, PowerState
from tests.ipmi.conftest import driver_for, session_closed, wait_until

CLOSE_SESSION = (0x06, 0x3C)
CIPHER_MODES = ["strict", "always3"]


@pytest.mark.parametrize("cipher_mode", CIPHER_MODES)
def test_nmi_reaches_the_host_exactly_once(add_bmc: Callable[..., IpmiBmc], cipher_mode: str) -> None:
    bmc = add_bmc(cipher_mode)
    with driver_for(bmc) as driver:
        result = driver.send_nmi()
        assert driver.cipher_suite == 3
    assert result.to_dict()["via"] == "ipmi"
    assert result.action == "nmi" and result.status == 0
    assert result.sent == ("chassis control 0x04 (pulse diagnostic interrupt)",)
    assert bmc.nmi_count == 1
    assert bmc.chassis_controls == {0x04: 1}
    host = cast(SimulatedHost, bmc.host)
    assert host.nmi_count == 1 and host.state is HostState.PANIC
    assert wait_until(lambda: session_closed(bmc)) and bmc.requests[CLOSE_SESSION] == 1


def test_strict_bmc_refuses_suite_17_and_oob_falls_back(add_bmc: Callable[..., IpmiBmc]) -> None:
    strict, always3 = add_bmc("strict"), add_bmc("always3")
    for bmc in (strict, always3):
        with driver_for(bmc) as driver:
            assert driver.power_state() is PowerState.ON
    assert strict.cipher_refusals == 1  # oob proposed 17, got 0x11, proposed 3
    assert always3.cipher_refusals == 0  # oob proposed 17, was answered with 3, followed it


def test_power_status_on_off_cycle_shutdown_reset(add_bmc: Callable[..., IpmiBmc]) -> None:
    bmc = add_bmc()
    host = cast(SimulatedHost, bmc.host)

    def state() -> HostState:  # read afresh each time (the mock's thread changes it)
        return host.state

    with driver_for(bmc) as driver:
        assert driver.power_state() is PowerState.ON
        assert driver.power(PowerAction.OFF).sent == ("chassis control 0x00 (power down)",)
        assert driver.power_state() is PowerState.OFF and state() is HostState.OFF
        driver.power(PowerAction.ON)
        assert driver.power_state() is PowerState.ON
        host.hang()
        assert driver.power(PowerAction.CYCLE).sent == ("chassis control 0x02 (power cycle)",)
        assert state() is HostState.RUNNING
        assert [r.event for r in host.history[-2:]] == ["power_off", "power_on"]
        driver.power(PowerAction.RESET)
        assert host.history[-1].event == "restart"
        driver.power(PowerAction.SHUTDOWN)
        assert driver.power_state() is PowerState.OFF
    assert bmc.nmi_count == 0
    assert bmc.chassis_controls == {0x00: 1, 0x01: 1, 0x02: 1, 0x03: 1, 0x05: 1}


def test_power_cycle_of_an_off_host_is_refused_by_name(add_bmc: Callable[..., IpmiBmc]) -> None:
    bmc = add_bmc()
    cast(SimulatedHost, bmc.host).set_power("Off")
    with driver_for(bmc) as driver, pytest.raises(BmcRefused) as caught:
        driver.power(PowerAction.CYCLE)
    assert "0xD5 (command not supported in present state)" in str(caught.value)
    assert caught.value.host == bmc.name
    assert wait_until(lambda: session_closed(bmc))


def test_info_reads_get_device_id(add_bmc: Callable[..., IpmiBmc]) -> None:
    bmc = add_bmc(identity=DeviceIdentity(manufacturer_id=674, product_id=0x0100, firmware=(7, 10)))
    with driver_for(bmc) as driver:
        info = driver.info()
        assert driver.nmi_support().offered is True
    assert (info.method, info.vendor, info.firmware, info.power) == ("ipmi", "Dell", "7.10", PowerState.ON)
    assert info.nmi.to_dict() == {"offered": True, "source": "ipmi", "allowed": []}
    assert info.manager == "IPMI 2.0 BMC, device ID 0x20, product ID 0x0100, cipher suite 3"
    assert info.warnings == ()


@pytest.mark.parametrize("cipher_mode", CIPHER_MODES)
def test_wrong_user_fails_fast(add_bmc: Callable[..., IpmiBmc], cipher_mode: str) -> None:
    bmc = add_bmc(cipher_mode)
    started = time.monotonic()
    with pytest.raises(BmcAuthError) as caught:
        driver_for(bmc, username="nobody").open()
    assert time.monotonic() - started < 1.0
    assert "IPMI user name 'nobody'" in str(caught.value)
    assert caught.value.bmc_message == "0x0D (unauthorized name)"
    assert caught.value.exit_code == 3 and bmc.auth_failures >= 1


@pytest.mark.parametrize("cipher_mode", CIPHER_MODES)
def test_wrong_password_fails_fast(add_bmc: Callable[..., IpmiBmc], cipher_mode: str) -> None:
    bmc = add_bmc(cipher_mode)
    started = time.monotonic()
    with pytest.raises(BmcAuthError, match="refused the password of IPMI user 'admin'") as caught:
        driver_for(bmc, password="not-the-password").open()
    assert time.monotonic() - started < 1.0
    assert "not-the-password" not in str(caught.value)
    assert bmc.request_count == 0


def test_no_answer_at_all_is_unreachable_and_retryable(add_bmc: Callable[..., IpmiBmc]) -> None:
    bmc = add_bmc()
    bmc.set_fault("down")
    with pytest.raises(BmcUnreachable) as caught:
        driver_for(bmc, kind="ilo", timeout=1.0).open()
    assert caught.value.retryable  # nothing was delivered: safe to retry, or to fall back
    assert "no answer from 127.0.0.1" in str(caught.value) and "session setup within 1 s" in str(caught.value)
    assert "HPE iLO" not in str(caught.value)  # the hint is added once, by oob.runbook.methods
    assert bmc.dropped > 0 and bmc.request_count == 0


@pytest.mark.parametrize(("timeout", "attempts"), [(0.5, 1), (1.0, 1), (0.5, 3)])
def test_a_silent_bmc_fails_in_its_timeout_times_the_attempts(
    add_bmc: Callable[..., IpmiBmc], timeout: float, attempts: int
) -> None:
    """bmc.timeout bounds each login attempt (pyghmi's own timer gave up after about 5.5 s
    whatever it said: 17 s for three attempts); oob waits 0.5 s, 1 s... between attempts."""
    bmc = add_bmc()
    bmc.set_fault("down")
    retries: list[str] = []
    started = time.monotonic()
    with pytest.raises(BmcUnreachable) as caught:
        driver_for(bmc, timeout=timeout, connect_attempts=attempts, on_retry=retries.append).open()
    elapsed = time.monotonic() - started
    pauses = sum(0.5 * 2**n for n in range(attempts - 1))
    print(f"timeout {timeout:g} s x {attempts} attempt(s): failed after {elapsed:.2f} s")
    assert timeout * attempts + pauses <= elapsed < timeout * attempts + pauses + 1.5
    assert caught.value.retryable and f"session setup within {timeout:g} s" in str(caught.value)
    assert len(retries) == attempts - 1 and all("nothing was sent, retrying" in r for r in retries)
    assert bmc.request_count == 0


def test_login_keeps_trying_while_the_bmc_is_silent(add_bmc: Callable[..., IpmiBmc]) -> None:
    """A BMC that misses the first setup messages is logged into within one attempt:
    pyghmi retransmits them meanwhile."""
    bmc = add_bmc()
    bmc.set_fault("down")
    comes_back = threading.Timer(1.5, lambda: bmc.set_fault("down", False))
    comes_back.start()
    try:
        with driver_for(bmc, timeout=10.0, connect_attempts=1) as driver:
            driver.send_nmi()
    finally:
        comes_back.cancel()
    assert bmc.dropped >= 1 and bmc.nmi_count == 1


def test_a_login_attempt_is_capped_below_a_long_request_timeout(add_bmc: Callable[..., IpmiBmc]) -> None:
    from oob.drivers.ipmi.client import LOGIN_TIMEOUT_CAP

    bmc = add_bmc()
    bmc.set_fault("down")
    with pytest.raises(BmcUnreachable) as caught:
        with driver_for(bmc, timeout=60.0, connect_attempts=1):
            pass
    assert f"within {LOGIN_TIMEOUT_CAP:g} s" in caught.value.message
    assert caught.value.retryable and bmc.nmi_count == 0


def test_unanswered_login_is_retried_then_works(add_bmc: Callable[..., IpmiBmc]) -> None:
    bmc = add_bmc()
    bmc.set_fault("down")
    retries: list[str] = []

    def on_retry(message: str) -> None:
        retries.append(message)
        bmc.set_fault("down", False)  # the BMC comes back before the second attempt

    with driver_for(bmc, timeout=1.0, connect_attempts=2, on_retry=on_retry) as driver:
        driver.send_nmi()
    assert len(retries) == 1 and "nothing was sent, retrying (attempt 2 of 2)" in retries[0]
    assert bmc.nmi_count == 1


@pytest.mark.parametrize(
    ("fault", "error", "said"),
    [
        ("nmi_unsupported", ActionUnsupported, "0xCC (invalid data field in request)"),
        ("nmi_refused", BmcRefused, "0xD5 (command not supported in present state)"),
    ],
)
def test_nmi_refusal_is_named_and_not_sent(
    add_bmc: Callable[..., IpmiBmc], fault: str, error: type[NotDelivered], said: str
) -> None:
    bmc = add_bmc()
    bmc.set_fault(fault)
    with driver_for(bmc) as driver, pytest.raises(error) as caught:
        driver.send_nmi()
    assert isinstance(caught.value, NotDelivered)  # another method may be tried
    assert caught.value.bmc_message == said and said in str(caught.value)
    assert caught.value.exit_code == 4
    assert bmc.nmi_count == 0 and bmc.chassis_controls == {0x04: 1}
    assert wait_until(lambda: session_closed(bmc)) and bmc.requests[CLOSE_SESSION] == 1


def test_username_is_required() -> None:
    from oob.drivers.ipmi import IpmiDriver
    from oob.errors import UsageError
    from oob.model import BmcConfig, Host

    with pytest.raises(UsageError, match="bmc.username"):
        IpmiDriver(Host("h", bmc=BmcConfig(kind="ipmi", address="127.0.0.1")), "pw")
