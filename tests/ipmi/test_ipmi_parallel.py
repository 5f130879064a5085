"""Many IPMI sessions in parallel threads of one process, as ``oob nmi --parallel`` runs them.

Stock pyghmi reads every datagram of the process in one I/O thread and wakes a thread
waiting for an answer only if it was registered as waiting when the answer was read: a
thread descheduled between sending and waiting (common with dozens of threads) slept
through its answer until its timer ran out - for an NMI, the whole ``bmc.timeout``
(10 s), though the BMC had answered at once.  An ``OobSession`` reads its own socket:
an answer that arrives before its thread waits stays there until the thread reads it.
"""

from __future__ import annotations

import select
import socket
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from mocks.ipmi_server import IpmiBmc
from oob.drivers.factory import resolve_password
from oob.drivers.ipmi import IpmiDriver
from oob.drivers.ipmi.session import OobSession
from oob.inventory import load_inventory
from oob.model import Host, PowerState
from tests.ipmi.conftest import driver_for, session_closed, wait_until

REPO = Path(__file__).resolve().parents[2]
FLEET = 30
#: far below the 10 s (the fleet's bmc.timeout) one missed answer to an NMI used to cost
TOTAL_BOUND = 8.0


def test_an_answer_read_before_the_thread_waits_for_it_is_not_missed(
    add_bmc: Callable[..., IpmiBmc], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race, forced: the NMI's answer has arrived on the session's socket before the
    sending thread starts waiting for it."""
    bmc = add_bmc()
    original = OobSession._send_ipmi_net_payload
    queued_first: list[bool] = []

    def send_then_stall(
        self: OobSession, netfn: Any = None, command: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        result = original(self, netfn, command, *args, **kwargs)
        if (netfn, command) == (0x00, 0x02):  # Chassis Control: as if descheduled right after sendto
            answered = select.poll()
            answered.register(self.socket, select.POLLIN)
            queued_first.append(bool(answered.poll(5000)))
        return result

    monkeypatch.setattr(OobSession, "_send_ipmi_net_payload", send_then_stall)
    with driver_for(bmc, timeout=20.0) as driver:
        started = time.monotonic()
        result = driver.send_nmi()
        elapsed = time.monotonic() - started
    print(f"NMI answered {elapsed * 1000:.1f} ms after sending (answer there before waiting)")
    assert queued_first == [True]
    assert result.status == 0 and bmc.nmi_count == 1
    assert elapsed < 5.0, f"the answer was noticed only after {elapsed:.1f} s (timeout 20 s)"
    assert wait_until(lambda: session_closed(bmc))


def test_an_answer_that_waited_past_the_timeout_behind_another_datagram_still_counts(
    add_bmc: Callable[..., IpmiBmc], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread kept from running (dozens of threads, one GIL) past its NMI's timeout, while
    the answer arrived behind a stray datagram: the session takes in everything that
    arrived before it acts on the timeout, so the NMI is reported sent, not unknown."""
    bmc = add_bmc()
    original = OobSession._send_ipmi_net_payload

    def send_then_stall(
        self: OobSession, netfn: Any = None, command: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        if (netfn, command) == (0x00, 0x02):  # a stray datagram queued before the NMI's answer
            family, port = self.socket.family, self.socket.getsockname()[1]
            with socket.socket(family, socket.SOCK_DGRAM) as stray:
                stray.sendto(
                    b"\x06\x00\xff\x07" + bytes(20),
                    ("::1" if family == socket.AF_INET6 else "127.0.0.1", port),
                )
        result = original(self, netfn, command, *args, **kwargs)
        if (netfn, command) == (0x00, 0x02):
            time.sleep(1.5)  # descheduled past the 1 s timeout, the answer waiting in the socket
        return result

    monkeypatch.setattr(OobSession, "_send_ipmi_net_payload", send_then_stall)
    with driver_for(bmc, timeout=1.0) as driver:
        result = driver.send_nmi()
    assert result.status == 0 and bmc.nmi_count == 1
    assert wait_until(lambda: session_closed(bmc))


# -- a fleet of IPMI BMCs in another process, as real BMCs are ----------------------------


@dataclass(frozen=True)
class ChildFleet:
    hosts: list[Host]
    control_url: str

    def bmcs(self) -> dict[str, dict[str, Any]]:
        with requests.Session() as http:
            http.trust_env = False
            listing = http.get(f"{self.control_url}/bmcs", timeout=10).json()
        return {b["name"]: b for b in listing}


@pytest.fixture
def child_fleet(tmp_path: Path) -> Iterator[ChildFleet]:
    """``python -m mocks serve`` with FLEET IPMI-only BMCs: the answers come from another
    process, as from real BMCs, not from a thread competing with oob's for the GIL."""
    from mocks.child import serve_in_child

    with serve_in_child(["ipmi"], FLEET, tmp_path) as child:
        hosts = list(load_inventory([child.inventory]).hosts.values())
        assert len(hosts) == FLEET and all(h.bmc.address == "127.0.0.1" for h in hosts)
        yield ChildFleet(hosts, child.control_url)


@dataclass(frozen=True)
class Timing:
    host: str
    login: float
    request: float
    answer: Any


def _in_parallel(hosts: list[Host], request: Callable[[IpmiDriver], Any]) -> tuple[float, list[Timing]]:
    def one(host: Host) -> Timing:
        started = time.monotonic()
        with IpmiDriver(host, resolve_password(host), connect_attempts=1) as driver:
            logged_in = time.monotonic()
            answer = request(driver)
            answered = time.monotonic()
        return Timing(host.name, logged_in - started, answered - logged_in, answer)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:  # every session at once, one process
        timings = list(pool.map(one, hosts))
    return time.monotonic() - started, timings


def _report(what: str, total: float, timings: list[Timing]) -> None:
    def ms(values: list[float]) -> str:
        return f"median {statistics.median(values) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"

    print(
        f"{what} on {len(timings)} IPMI BMCs in parallel threads: {total:.2f} s in all; "
        f"login {ms([t.login for t in timings])}; request {ms([t.request for t in timings])}"
    )


def test_power_status_and_nmi_on_thirty_bmcs_in_parallel_threads(child_fleet: ChildFleet) -> None:
    hosts = child_fleet.hosts
    assert all(h.bmc.timeout == 10 for h in hosts)  # what a missed answer to the NMI would cost

    total, status = _in_parallel(hosts, lambda driver: driver.power_state())
    _report("power status", total, status)
    assert [t.answer for t in status] == [PowerState.ON] * FLEET
    assert total < TOTAL_BOUND

    total, sent = _in_parallel(hosts, lambda driver: driver.send_nmi())
    _report("NMI", total, sent)
    assert all(t.answer.status == 0 and t.answer.method == "ipmi" for t in sent)
    assert total < TOTAL_BOUND, f"slowest: {max(sent, key=lambda t: t.request)}"

    def settled() -> bool:
        return all(b["ipmi"]["open_sessions"] == 0 for b in child_fleet.bmcs().values())

    assert wait_until(settled)
    bmcs = child_fleet.bmcs()
    for host in hosts:
        bmc = bmcs[host.name]
        assert (bmc["nmi_count"], bmc["nmi_count_ipmi"]) == (1, 1), host.name
        assert bmc["ipmi"]["chassis_controls"] == {"0x04": 1}, host.name  # one NMI datagram on the wire
