"""After the NMI's bytes left, nothing turns it into "not sent"; deadlines hold against dripping BMCs."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from oob.errors import BmcUnreachable, OutcomeUnknown
from tests.hostile.server import (
    RESET,
    ROOT,
    SESSION_1,
    SYSTEM,
    Answer,
    Behaviour,
    HostileServer,
    elsewhere_than_the_standard_login,
)

TIMEOUT = 1.5
#: generous: the point is that it ends, not how fast
BOUND = 3 * TIMEOUT + 2


@pytest.mark.parametrize("abort", ["reset", "close", "garbage", "silence"])
def test_failure_after_the_nmi_arrived_is_unknown_and_never_resent(
    abort: str,
    hostile_bmc: Callable[..., HostileServer],
    hostile_driver: Callable[..., Any],
    bystander: HostileServer,
) -> None:
    bmc = hostile_bmc(Behaviour(answers={("POST", RESET): Answer(abort=abort)}))
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown) as caught, hostile_driver(bmc, attempts=3, timeout=TIMEOUT) as driver:
        driver.send_nmi()
    assert time.monotonic() - started < BOUND
    assert caught.value.exit_code == 6
    assert bmc.count("POST", RESET) == 1
    assert bystander.count() == 0
    assert bmc.count("DELETE", SESSION_1) == 1  # the session was still deleted


@pytest.mark.parametrize("head", [True, False])
def test_a_dripping_nmi_reply_is_unknown_within_the_deadline(
    head: bool, hostile_bmc: Callable[..., HostileServer], hostile_driver: Callable[..., Any]
) -> None:
    # a 500 dripped: headers or body one byte a second
    bmc = hostile_bmc(
        Behaviour(
            answers={
                ("POST", RESET): Answer(500, body={"error": {"message": "x" * 50}}, drip=1.0, drip_head=head)
            }
        )
    )
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown), hostile_driver(bmc, attempts=3, timeout=TIMEOUT) as driver:
        driver.send_nmi()
    assert time.monotonic() - started < BOUND + 2  # plus the logout's own bound
    assert bmc.count("POST", RESET) == 1


def test_a_2xx_whose_body_drips_past_the_deadline_is_sent(
    hostile_bmc: Callable[..., HostileServer], hostile_driver: Callable[..., Any]
) -> None:
    bmc = hostile_bmc(
        Behaviour(answers={("POST", RESET): Answer(200, body={"a": "b" * 40}, drip=1.0, drip_head=False)})
    )
    with hostile_driver(bmc, timeout=TIMEOUT) as driver:
        result = driver.send_nmi()
    assert result.status == 200 and result.bmc_message is None
    assert bmc.count("POST", RESET) == 1


@pytest.mark.parametrize("head", [True, False])
def test_a_dripping_get_ends_within_the_deadline(
    head: bool, hostile_bmc: Callable[..., HostileServer], hostile_driver: Callable[..., Any]
) -> None:
    dripping = Answer(200, body={"Name": "y" * 60}, drip=1.0, drip_head=head)
    bmc = hostile_bmc(Behaviour(answers={**elsewhere_than_the_standard_login(), ("GET", ROOT): dripping}))
    started = time.monotonic()
    with pytest.raises(BmcUnreachable) as caught:
        hostile_driver(bmc, attempts=3, timeout=TIMEOUT).open()
    assert time.monotonic() - started < BOUND
    assert caught.value.exit_code == 3
    assert bmc.count("GET", ROOT) == 1  # it may have been answered: not retried


def test_ctrl_c_ends_a_silent_request_and_the_session_is_still_deleted(
    hostile_bmc: Callable[..., HostileServer], hostile_driver: Callable[..., Any]
) -> None:
    bmc = hostile_bmc(Behaviour(answers={("GET", SYSTEM): Answer(abort="silence")}))
    driver = hostile_driver(bmc, timeout=30.0)
    timer = threading.Timer(0.5, os.kill, args=(os.getpid(), signal.SIGINT))
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), driver:
        timer.start()
        driver.power_state()
    timer.join()
    assert time.monotonic() - started < 10  # not the 30 s of bmc.timeout
    assert bmc.count("DELETE", SESSION_1) == 1


def test_logout_against_a_silent_bmc_is_bounded(
    hostile_bmc: Callable[..., HostileServer], hostile_driver: Callable[..., Any]
) -> None:
    from oob.drivers.redfish.transport import LOGOUT_TIMEOUT

    bmc = hostile_bmc(Behaviour(answers={("DELETE", SESSION_1): Answer(abort="silence")}))
    driver = hostile_driver(bmc, timeout=TIMEOUT)
    driver.open()
    started = time.monotonic()
    driver.close()  # never raises
    assert time.monotonic() - started < 3 * min(TIMEOUT, LOGOUT_TIMEOUT)
    assert bmc.count("DELETE", SESSION_1) == 1


def test_refused_connection_is_retried_and_says_nothing_was_sent(
    hostile_bmc: Callable[..., HostileServer], hostile_host: Callable[..., Any]
) -> None:
    import socket

    from oob.drivers.redfish.driver import RedfishDriver
    from oob.drivers.tls import tls_policy_for
    from tests.hostile.conftest import PASSWORD

    bmc = hostile_bmc()
    host = hostile_host(bmc)
    bmc.stop()
    with socket.socket() as probe:  # the port is closed now
        assert probe.connect_ex(("127.0.0.1", bmc.port)) != 0
    retries: list[str] = []
    driver = RedfishDriver(
        host, PASSWORD, tls_policy_for(host.bmc), connect_attempts=2, on_retry=retries.append
    )
    with pytest.raises(BmcUnreachable) as caught:
        driver.open()
    assert caught.value.retryable and len(retries) == 1 and "nothing was sent" in retries[0]
