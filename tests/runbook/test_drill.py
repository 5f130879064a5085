"""run_drill in-process, NMI method: a healthy, ready host is crashed on purpose through
its (fake) BMC and its dump is found.  The host side of readiness needs SSH: it is
replaced here by a fixed answer (``oob.runbook.preflight.host_side``); the sysrq method
needs SSH too and is left to the end-to-end tests (tests/preflight)."""

from __future__ import annotations

from pathlib import Path

import pytest

from oob.audit import AuditLog
from oob.drivers.fake import FakeBmc, FakeFleet
from oob.dump.watcher import WatchOptions
from oob.model import Host
from oob.preflight.checks import FAIL, OK, CheckResult
from oob.runbook.crash import CrashRequest
from oob.runbook.drill import DrillRequest, run_drill
from oob.runbook.preflight import PreflightRequest

from .conftest import Events, FakeProbe, kdump_on_nmi, make_host, never, records

FAST = WatchOptions(interval=0.02, stall_after=0.5, timeout=5.0, progress_every=0.05)


def drill_request(*, force: bool = False, reboot_grace_s: float = 2.0) -> DrillRequest:
    crash = CrashRequest(
        assume_yes=True,
        watch=FAST,
        reboot_grace_s=reboot_grace_s,
        probe_timeout_s=0.1,
        expect_hung=False,
        force=force,
        console=False,  # the fake BMC has no serial console
    )
    return DrillRequest(crash=crash, preflight=PreflightRequest(), method="nmi")


def host_side_says(*checks: CheckResult) -> object:
    def host_side(host: Host, request: PreflightRequest) -> tuple[list[CheckResult], None]:
        return [CheckResult("ssh", "host", OK, "logged in (fake)"), *checks], None

    return host_side


@pytest.fixture
def ready_host(fleet: FakeFleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Host, FakeBmc]:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    host = make_host("db01", "127.0.1.7", address="127.0.2.7", dump_target=f"file://{dumps}")
    bmc = fleet.add(host.bmc.address)
    bmc.on_apply = kdump_on_nmi(dumps, identity="127.0.2.7", hostname="db01")
    monkeypatch.setattr("oob.runbook.crash.probe_host", FakeProbe(bmc, alive=True))
    monkeypatch.setattr(
        "oob.runbook.preflight.host_side",
        host_side_says(CheckResult("kexec_crash_loaded", "host", OK, "a crash kernel is loaded (fake)")),
    )
    return host, bmc


def test_a_ready_host_passes_its_nmi_drill(
    ready_host: tuple[Host, FakeBmc], audit: AuditLog, events: Events
) -> None:
    host, bmc = ready_host

    report = run_drill([host], drill_request(), confirm=never, emit=events, audit=audit)

    [outcome] = report.outcomes
    assert (outcome.verdict, outcome.exit_code, outcome.method) == ("pass", 0, "nmi")
    assert outcome.crash.via == "redfish" and outcome.crash.host_back is True
    assert outcome.readiness is not None and outcome.readiness.ready
    assert bmc.nmis_applied() == 1
    assert [r["event"] for r in records(audit, host="db01")] == ["nmi.sending", "nmi.sent", "crash.result"]
    assert "readiness" in events.kinds("db01")


def test_a_host_not_ready_is_refused_unless_forced(
    ready_host: tuple[Host, FakeBmc], audit: AuditLog, events: Events, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, bmc = ready_host
    monkeypatch.setattr(
        "oob.runbook.preflight.host_side",
        host_side_says(CheckResult("kexec_crash_loaded", "host", FAIL, "no crash kernel is loaded (fake)")),
    )

    report = run_drill([host], drill_request(), confirm=never, emit=events, audit=audit)

    [outcome] = report.outcomes
    assert (outcome.verdict, outcome.exit_code) == ("refused", 7)
    assert outcome.crash.error is not None and "kexec_crash_loaded" in outcome.crash.error.message
    assert bmc.nmis_applied() == 0

    forced = run_drill(
        [host], drill_request(force=True), confirm=never, emit=events, audit=AuditLog(audit.path)
    )

    assert [(o.verdict, o.exit_code) for o in forced.outcomes] == [("pass", 0)]
    assert bmc.nmis_applied() == 1


def test_a_host_that_does_not_look_healthy_is_not_drilled(
    ready_host: tuple[Host, FakeBmc], audit: AuditLog, events: Events, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, bmc = ready_host
    monkeypatch.setattr("oob.runbook.crash.probe_host", FakeProbe(bmc, alive=False))

    report = run_drill([host], drill_request(), confirm=never, emit=events, audit=audit)

    [outcome] = report.outcomes
    assert (outcome.verdict, outcome.exit_code) == ("refused", 7)
    assert outcome.crash.error is not None and "does not look healthy" in outcome.crash.error.message
    assert bmc.nmis_applied() == 0


def test_a_host_that_does_not_come_back_fails_the_drill(
    ready_host: tuple[Host, FakeBmc], audit: AuditLog, events: Events, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, bmc = ready_host
    monkeypatch.setattr("oob.runbook.crash.probe_host", FakeProbe(bmc, alive=True, after_nmi=False))

    report = run_drill([host], drill_request(reboot_grace_s=0.2), confirm=never, emit=events, audit=audit)

    [outcome] = report.outcomes
    assert (outcome.crash.status, outcome.crash.host_back) == ("complete", False)
    assert (outcome.verdict, outcome.exit_code) == ("fail", 5)
    assert bmc.nmis_applied() == 1
