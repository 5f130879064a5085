"""The NMI through libvirt leaves once: counted at the domain, judged by libvirt's error
code when it fails, never retried after it may have left."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from oob.audit import AuditLog
from oob.drivers.factory import use_drivers
from oob.drivers.libvirt import LibvirtDriver
from oob.errors import ActionUnsupported, BmcRefused, OutcomeUnknown
from oob.events import discard
from oob.model import Host
from oob.runbook.nmi import NmiRequest, run_nmi
from tests.libvirt.conftest import libvirt_error


class CountingDomain:
    """The real test-driver domain, with its injectNMI calls counted (or made to fail)."""

    def __init__(
        self, real: Any, fail: Exception | None = None, block: threading.Event | None = None
    ) -> None:
        self.real = real
        self.fail = fail
        self.block = block
        self.injected = 0

    def injectNMI(self, flags: int) -> int:
        self.injected += 1
        if self.block is not None:
            self.block.wait(30)
        if self.fail is not None:
            raise self.fail
        return int(self.real.injectNMI(flags))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class CountingDriver(LibvirtDriver):
    domains: list[CountingDomain]

    def __init__(self, host: Host, domains: list[CountingDomain], **kwargs: Any) -> None:
        super().__init__(host)
        self.domains = domains
        self.kwargs = kwargs

    def _lookup(self) -> Any:
        domain = CountingDomain(super()._lookup(), **self.kwargs)
        self.domains.append(domain)
        return domain


def injected(domains: list[CountingDomain]) -> int:
    return sum(d.injected for d in domains)


def test_run_nmi_injects_once_and_the_guard_refuses_a_second(
    guest: Callable[..., Host], tmp_path: Path
) -> None:
    host = guest()
    audit = AuditLog(tmp_path / "audit.jsonl", command=["test"])
    domains: list[CountingDomain] = []
    request = NmiRequest(assume_yes=True)
    with use_drivers(lambda h, method: CountingDriver(h, domains)):
        [first] = run_nmi([host], request, confirm=lambda plans: True, emit=discard, audit=audit)
        [second] = run_nmi([host], request, confirm=lambda plans: True, emit=discard, audit=audit)
    assert first.status == "ok" and first.via == "libvirt"
    assert first.detail["answer"] == "virDomainInjectNMI returned"
    assert second.status == "refused" and second.exit_code == 7
    assert injected(domains) == 1


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("VIR_ERR_OPERATION_INVALID", BmcRefused),
        ("VIR_ERR_ACCESS_DENIED", BmcRefused),
        ("VIR_ERR_NO_SUPPORT", ActionUnsupported),
        ("VIR_ERR_OPERATION_UNSUPPORTED", ActionUnsupported),
        ("VIR_ERR_RPC", OutcomeUnknown),
        ("VIR_ERR_SYSTEM_ERROR", OutcomeUnknown),
        ("VIR_ERR_INTERNAL_ERROR", OutcomeUnknown),
        ("VIR_ERR_OPERATION_TIMEOUT", OutcomeUnknown),
    ],
)
def test_an_inject_failure_is_judged_by_its_code(
    guest: Callable[..., Host], code: str, expected: type[Exception]
) -> None:
    import libvirt

    # the same words for every code: the code decides, never the text
    failure = libvirt_error(getattr(libvirt, code), "domain is not running")
    domains: list[CountingDomain] = []
    with CountingDriver(guest(), domains, fail=failure) as driver, pytest.raises(expected):
        driver.send_nmi()
    assert injected(domains) == 1


def test_an_unknown_outcome_is_never_resent_by_the_runbook(
    guest: Callable[..., Host], tmp_path: Path
) -> None:
    import libvirt

    audit = AuditLog(tmp_path / "audit.jsonl", command=["test"])
    domains: list[CountingDomain] = []
    failure = libvirt_error(libvirt.VIR_ERR_RPC, "connection reset")
    with use_drivers(lambda h, method: CountingDriver(h, domains, fail=failure)):
        [outcome] = run_nmi(
            [guest()], NmiRequest(assume_yes=True), confirm=lambda p: True, emit=discard, audit=audit
        )
    assert outcome.status == "unknown" and outcome.exit_code == 6
    assert injected(domains) == 1
    text = (tmp_path / "audit.jsonl").read_text()
    assert text.count('"nmi.sending"') == 1 and text.count('"nmi.failed"') == 1


def test_an_inject_that_does_not_return_is_unknown_at_the_deadline(guest: Callable[..., Host]) -> None:
    hold = threading.Event()
    domains: list[CountingDomain] = []
    try:
        with CountingDriver(guest(timeout=0.5), domains, block=hold) as driver:
            with pytest.raises(OutcomeUnknown, match="did not answer virDomainInjectNMI"):
                driver.send_nmi()
    finally:
        hold.set()
    assert injected(domains) == 1


def test_libvirts_words_reach_the_terminal_escaped_and_bounded(guest: Callable[..., Host]) -> None:
    import libvirt

    hostile = "\x1b]0;owned\x07\x1b[2J" + "x" * 5000
    failure = libvirt_error(libvirt.VIR_ERR_OPERATION_INVALID, hostile)
    with CountingDriver(guest(), [], fail=failure) as driver, pytest.raises(BmcRefused) as caught:
        driver.send_nmi()
    said = caught.value.bmc_message or ""
    assert "\x1b" not in said and "\x07" not in said
    assert len(said) <= 300
