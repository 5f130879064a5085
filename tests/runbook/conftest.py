"""Fixtures for the in-process runbook tests: a fake BMC fleet put in place of the real
drivers (``oob.drivers.factory.use_drivers``), a temporary audit log, hosts, and helpers.

No subprocess, no socket: each test runs in well under a second.  The end-to-end tests
(tests/integration, tests/ipmi) drive the same runbooks against the mock BMCs over loopback.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from oob.audit import AuditLog
from oob.drivers.factory import use_drivers
from oob.drivers.fake import Applied, ApplyHook, FakeBmc, FakeFleet
from oob.errors import AuditLogError
from oob.events import Event
from oob.model import BmcConfig, DumpConfig, Host, SecretRef
from oob.probe import ProbeResult


def make_host(
    name: str,
    bmc_address: str,
    *,
    methods: tuple[str, ...] = ("redfish", "ipmi"),
    kind: str = "auto",
    address: str | None = None,
    dump_target: str | None = None,
    **host: Any,
) -> Host:
    """A host whose BMC the fake fleet knows by ``bmc_address`` (nothing ever connects to it)."""
    bmc = BmcConfig(
        kind=kind,
        address=bmc_address,
        username="admin",
        password=SecretRef("env", "OOB_TEST_PW"),
        methods=methods,
    )
    return Host(name=name, address=address, bmc=bmc, dump=DumpConfig(target=dump_target), **host)


@pytest.fixture(autouse=True)
def no_network_no_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests stay in the process: a connection or a child process is a test bug (a
    real driver or probe left in place), made loud here rather than slow or flaky."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("tests/runbook must not open connections or start processes")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)


@pytest.fixture
def fleet() -> Iterator[FakeFleet]:
    """A FakeFleet every ``make_driver`` returns drivers of, for the test; at its end every
    session oob opened on a fake BMC must be closed again."""
    fake = FakeFleet()
    with use_drivers(fake):
        yield fake
    leaked = {key: fake[key].open_sessions() for key in fake if fake[key].open_sessions()}
    assert not leaked, f"sessions left open on the fake BMCs: {leaked}"


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "state" / "audit.jsonl", ("oob", "test"))


def records(audit: AuditLog, event: str | None = None, host: str | None = None) -> list[dict[str, Any]]:
    """The audit log's records (``event``/``host``: only those)."""
    if not audit.path.exists():
        return []
    entries = [json.loads(line) for line in audit.path.read_text().splitlines()]
    return [
        e
        for e in entries
        if (event is None or e["event"] == event) and (host is None or e.get("host") == host)
    ]


@dataclass
class Events:
    """An ``emit`` that keeps what the runbook said."""

    seen: list[Event] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        self.seen.append(event)

    def kinds(self, host: str | None = None) -> list[str]:
        return [e.kind for e in self.seen if host is None or e.host == host]


@pytest.fixture
def events() -> Events:
    return Events()


class FailingAudit(AuditLog):
    """A real audit log whose records of the given events cannot be written (as on a full
    disk), to reach the one moment between two records."""

    def __init__(self, path: Path, failing: set[str]) -> None:
        super().__init__(path, ("oob", "test"))
        self.failing = failing

    def record(self, event: str, host: str | None = None, **fields: Any) -> None:
        if event in self.failing:
            raise AuditLogError(
                f"cannot write the audit log {self.path}: No space left on device; the record was not written"
            )
        super().record(event, host, **fields)


def never(*_: Any) -> bool:
    """A confirmation that must not be asked."""
    raise AssertionError("the confirmation was asked")


def kdump_on_nmi(root: Path, identity: str, *, hostname: str = "host01") -> ApplyHook:
    """A FakeBmc hook: when an NMI reaches the host, its kdump writes a whole dump (RHEL
    layout, sent over the network as ``<identity>-<stamp>``) into ``root`` at once, with
    mocks/kdump.py, the writer the mock fleet uses."""
    from mocks.kdump import DumpSpec, KdumpWriter

    def crash(bmc: FakeBmc, applied: Applied) -> None:
        if applied.reset_type != "Nmi":
            return
        spec = DumpSpec(
            layout="rhel-nfs",
            identity=identity,
            hostname=hostname,
            size=64 * 1024,
            chunk=16 * 1024,
            boot_delay=0.0,
            dmesg_delay=0.0,
        )
        for _ in KdumpWriter(root, spec).steps():  # each step is done when it is taken; nothing waits
            pass

    return crash


@dataclass
class FakeProbe:
    """``oob.runbook.crash.probe_host`` for a host whose liveness a test decides: ``alive``
    until its BMC applied an NMI, ``after_nmi`` from then on (True: it rebooted)."""

    bmc: FakeBmc
    alive: bool | None = False
    after_nmi: bool | None = True
    calls: int = 0

    def __call__(self, host: Host, timeout: float = 3.0) -> ProbeResult:
        self.calls += 1
        alive = self.after_nmi if self.bmc.nmis_applied() > 0 else self.alive
        if alive is None:
            return ProbeResult(None, "none", "the inventory gives no address to probe")
        detail = "answered: SSH-2.0-OpenSSH_9.6 (fake probe)" if alive else "did not answer (fake probe)"
        return ProbeResult(alive, "ssh:fake:22", detail)
