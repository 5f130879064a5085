"""A request that may have reached the BMC is never sent again, on the wire.

The mock applies every Chassis Control it receives, even a retransmitted one, and counts
them (``chassis_controls``): a second NMI datagram would show as ``nmi_count == 2``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from mocks.ipmi_server import IpmiBmc
from oob.drivers.ipmi.session import OobSession, _SingleShot
from oob.errors import OutcomeUnknown
from tests.ipmi.conftest import PASSWORD, USER, driver_for, session_closed, wait_until

#: longer than pyghmi's retransmission interval (0.5-1.5 s) and its re-login after that
QUIET_PERIOD = 3.0


@pytest.mark.parametrize("cipher_mode", ["strict", "always3"])
def test_timeout_after_sending_is_outcome_unknown_and_never_resent(
    add_bmc: Callable[..., IpmiBmc], cipher_mode: str
) -> None:
    bmc = add_bmc(cipher_mode)
    bmc.set_fault("drop_after_apply")
    started = time.monotonic()
    with driver_for(bmc, timeout=1.0) as driver, pytest.raises(OutcomeUnknown) as caught:
        driver.send_nmi()
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 3.0
    assert caught.value.exit_code == 6
    assert "no answer came within 1 s" in str(caught.value) and "not sent again" in str(caught.value)
    time.sleep(QUIET_PERIOD)
    assert bmc.chassis_controls == {0x04: 1}
    assert bmc.nmi_count == 1
    assert session_closed(bmc)


def _session(bmc: IpmiBmc) -> OobSession:
    return OobSession(bmc=bmc.address, userid=USER, password=PASSWORD, port=bmc.port)


def test_stock_pyghmi_retry_path_would_send_a_second_nmi(add_bmc: Callable[..., IpmiBmc]) -> None:
    """The control experiment: pyghmi's retry path puts a second NMI on the wire, and the
    mock applies and counts it."""
    bmc = add_bmc()
    bmc.set_fault("drop_after_apply")
    session = _session(bmc)
    try:
        session._send_ipmi_net_payload(0x00, 0x02, data=(0x04,), retry=True, timeout=30)
        assert wait_until(lambda: bmc.chassis_controls[0x04] == 1)
        session.send_payload()  # what pyghmi's _timedout does: "act as if the packet is idempotent"
        assert wait_until(lambda: bmc.chassis_controls[0x04] == 2)
        assert bmc.nmi_count == 2
    finally:
        session._mark_broken()


def test_with_a_single_shot_armed_the_same_path_sends_nothing(add_bmc: Callable[..., IpmiBmc]) -> None:
    bmc = add_bmc()
    bmc.set_fault("drop_after_apply")
    session = _session(bmc)
    shot = _SingleShot(0x00, 0x02)
    try:
        session._single_shot = shot
        session._send_ipmi_net_payload(0x00, 0x02, data=(0x04,), retry=True, timeout=30)
        assert wait_until(lambda: bmc.chassis_controls[0x04] == 1)
        session.send_payload()  # refused by the guard in send_payload
        session._timedout()  # reports a timeout instead of resending or logging in again
        time.sleep(0.5)
        assert (shot.transmitted, shot.suppressed, shot.timed_out) == (1, 1, True)
        assert session.lastresponse["error"] == "timeout"
        assert bmc.chassis_controls[0x04] == 1 and bmc.nmi_count == 1
    finally:
        session._single_shot = None
        session._mark_broken()
