"""run_crash in-process: fake BMCs, a faked probe, a file:// dump target in tmp_path that
the host's (mock) kdump writes into when the NMI reaches it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from mocks.host import ManualClock
from mocks.kdump import DumpSpec, KdumpWriter
from oob.audit import AuditLog
from oob.drivers.fake import Applied, FakeBmc, FakeFleet, Fault, Stage
from oob.dump.watcher import DumpState, WatchOptions
from oob.model import Host, PowerState
from oob.probe import ProbeResult
from oob.runbook.crash import AfterDump, CrashRequest, run_crash
from oob.runbook.nmi import CrashPlan

from .conftest import Events, FakeProbe, kdump_on_nmi, make_host, never, records

FAST = WatchOptions(interval=0.02, stall_after=0.5, timeout=5.0, progress_every=0.05)
#: a watch that gives up at once, for hosts that never dump
SHORT = WatchOptions(interval=0.02, stall_after=0.1, timeout=0.2, progress_every=0.05)


def crash_request(**kwargs: object) -> CrashRequest:
    values: dict[str, object] = {
        "assume_yes": True,
        "watch": FAST,
        "reboot_grace_s": 2.0,
        "probe_timeout_s": 0.1,
        # the fake BMC has no serial console (SOL is tested against the mock's IPMI BMCs)
        "console": False,
    }
    values.update(kwargs)
    return CrashRequest(**values)  # type: ignore[arg-type]


@pytest.fixture
def dumps(tmp_path: Path) -> Path:
    root = tmp_path / "dumps"
    root.mkdir()
    return root


def hung_host(
    fleet: FakeFleet,
    dumps: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str = "web01",
    number: int = 1,
    *,
    writes_dump: bool = True,
    **probe: object,
) -> tuple[Host, FakeBmc, FakeProbe]:
    host = make_host(name, f"127.0.1.{number}", address=f"127.0.2.{number}", dump_target=f"file://{dumps}")
    bmc = fleet.add(host.bmc.address)
    if writes_dump:
        bmc.on_apply = kdump_on_nmi(dumps, identity=f"127.0.2.{number}", hostname=name)
    fake_probe = FakeProbe(bmc, **probe)  # type: ignore[arg-type]
    monkeypatch.setattr("oob.runbook.crash.probe_host", fake_probe)
    return host, bmc, fake_probe


def test_a_hung_host_gets_one_nmi_and_its_dump_is_complete(
    fleet: FakeFleet, audit: AuditLog, events: Events, dumps: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, bmc, _ = hung_host(fleet, dumps, monkeypatch)

    report = run_crash([host], crash_request(), confirm=never, emit=events, audit=audit)

    [outcome] = report.outcomes
    assert (outcome.status, outcome.exit_code, outcome.via, report.exit_code) == ("complete", 0, "redfish", 0)
    assert outcome.dump is not None and outcome.dump.state is DumpState.COMPLETE
    assert outcome.dump.directory is not None and outcome.dump.directory.startswith("127.0.2.1-")
    assert outcome.host_back is True
    assert outcome.probe is not None and outcome.probe.alive is False  # it was hung at preflight
    assert bmc.nmis_applied() == 1
    assert bmc.power_actions_applied() == []
    assert [r["event"] for r in records(audit, host="web01")] == ["nmi.sending", "nmi.sent", "crash.result"]
    assert records(audit, "crash.result")[0]["status"] == "complete"
    assert "dump_complete" in events.kinds("web01")


def test_the_confirmation_comes_before_the_nmi(
    fleet: FakeFleet, audit: AuditLog, events: Events, dumps: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, bmc, _ = hung_host(fleet, dumps, monkeypatch)
    asked: list[str] = []

    def confirm(plans: list[CrashPlan]) -> bool:
        asked.extend(p.host.name for p in plans)
        assert bmc.nmis_applied() == 0
        return False

    report = run_crash([host], crash_request(assume_yes=False), confirm=confirm, emit=events, audit=audit)

    assert asked == ["web01"]
    assert [(o.status, o.exit_code) for o in report.outcomes] == [("refused", 7)]
    assert bmc.nmis_applied() == 0


def test_a_healthy_host_is_refused_unless_forced(
    fleet: FakeFleet, audit: AuditLog, events: Events, dumps: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, bmc, _ = hung_host(fleet, dumps, monkeypatch, alive=True)

    report = run_crash([host], crash_request(), confirm=never, emit=events, audit=audit)

    [outcome] = report.outcomes
    assert (outcome.status, outcome.exit_code) == ("refused", 7)
    assert outcome.error is not None and "host looks healthy" in outcome.error.message
    assert bmc.nmis_applied() == 0

    forced = run_crash(
        [host], crash_request(force=True), confirm=never, emit=events, audit=AuditLog(audit.path)
    )

    assert [(o.status, o.exit_code) for o in forced.outcomes] == [("complete", 0)]
    assert bmc.nmis_applied() == 1

    # --force is for "looks healthy" only: a second crash minutes later needs --allow-repeat
    again = run_crash(
        [host], crash_request(force=True), confirm=never, emit=events, audit=AuditLog(audit.path)
    )
    [refused] = again.outcomes
    assert (refused.status, refused.exit_code) == ("refused", 7)
    assert refused.error is not None and "use --allow-repeat" in refused.error.message
    assert bmc.nmis_applied() == 1


def test_a_host_that_cannot_be_probed_is_refused(
    fleet: FakeFleet, audit: AuditLog, events: Events, dumps: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, bmc, _ = hung_host(fleet, dumps, monkeypatch, alive=None)

    report = run_crash([host], crash_request(), confirm=never, emit=events, audit=audit)

    assert [(o.status, o.exit_code) for o in report.outcomes] == [("refused", 7)]
    assert bmc.nmis_applied() == 0


def test_dry_run_probes_and_sends_nothing(
    fleet: FakeFleet, audit: AuditLog, events: Events, dumps: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, bmc, probe = hung_host(fleet, dumps, monkeypatch)

    report = run_crash([host], crash_request(dry_run=True), confirm=never, emit=events, audit=audit)

    assert [(o.status, o.exit_code, o.via) for o in report.outcomes] == [("dry-run", 0, "redfish")]
    assert probe.calls == 1
    assert bmc.nmis_applied() == 0
    assert "preflight" in events.kinds("web01")


def test_a_host_without_dump_target_is_refused_before_the_bmc(
    fleet: FakeFleet, audit: AuditLog, events: Events, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = make_host("web01", "127.0.1.1", address="127.0.2.1")
    bmc = fleet.add(host.bmc.address)
    monkeypatch.setattr("oob.runbook.crash.probe_host", FakeProbe(bmc))

    report = run_crash([host], crash_request(), confirm=never, emit=events, audit=audit)

    assert [(o.status, o.exit_code) for o in report.outcomes] == [("refused", 2)]
    assert (bmc.logins(), bmc.nmis_applied()) == (0, 0)


def test_an_unreadable_dump_target_refuses_before_the_nmi(
    fleet: FakeFleet, audit: AuditLog, events: Events, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, bmc, _ = hung_host(fleet, tmp_path / "no-such-directory", monkeypatch)

    report = run_crash([host], crash_request(), confirm=never, emit=events, audit=audit)

    [outcome] = report.outcomes
    assert (outcome.status, outcome.exit_code) == ("refused", 5)
    assert outcome.error is not None and "dump target not readable" in outcome.error.message
    assert bmc.nmis_applied() == 0


def test_no_dump_by_the_deadline_and_recover_power_cycles(
    fleet: FakeFleet, audit: AuditLog, events: Events, dumps: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, bmc, _ = hung_host(fleet, dumps, monkeypatch, writes_dump=False, after_nmi=False)

    report = run_crash(
        [host], crash_request(watch=SHORT, recover=True), confirm=never, emit=events, audit=audit
    )

    [outcome] = report.outcomes
    assert (outcome.status, outcome.exit_code, outcome.recovered) == ("timeout", 5, True)
    assert any("is kdump armed" in note for note in outcome.notes)
    assert bmc.nmis_applied() == 1
    assert bmc.power_actions_applied() == ["PowerCycle"]
    assert [r["event"] for r in records(audit, host="web01")][-3:] == [
        "recover.cycle.sending",
        "recover.cycle.done",
        "crash.result",
    ]


def test_an_unanswered_nmi_is_proven_by_its_dump(
    fleet: FakeFleet, audit: AuditLog, events: Events, dumps: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, bmc, _ = hung_host(fleet, dumps, monkeypatch)
    bmc.fail(Stage.NMI, Fault.OUTCOME_UNKNOWN, method="redfish", applied=True)

    report = run_crash([host], crash_request(), confirm=never, emit=events, audit=audit)

    [outcome] = report.outcomes
    assert (outcome.status, outcome.exit_code) == ("complete", 0)
    assert any("the dump proves it was delivered" in note for note in outcome.notes)
    assert (bmc.nmis_applied(), bmc.logins("ipmi")) == (1, 0)


def test_an_unanswered_nmi_without_dump_stays_unknown(
    fleet: FakeFleet, audit: AuditLog, events: Events, dumps: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, bmc, _ = hung_host(fleet, dumps, monkeypatch)
    bmc.fail(Stage.NMI, Fault.OUTCOME_UNKNOWN, method="redfish", applied=False)  # it never arrived

    report = run_crash([host], crash_request(watch=SHORT), confirm=never, emit=events, audit=audit)

    [outcome] = report.outcomes
    assert (outcome.status, outcome.exit_code) == ("unknown", 6)
    assert (bmc.nmis_applied(), bmc.logins("ipmi")) == (0, 0)  # and oob did not send another


def test_one_hosts_failure_does_not_stop_the_others(
    fleet: FakeFleet, audit: AuditLog, events: Events, dumps: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    web01, good, _ = hung_host(fleet, dumps, monkeypatch)
    web02 = make_host("web02", "127.0.1.2", address="127.0.2.2", dump_target=f"file://{dumps}")
    bad = fleet.add(web02.bmc.address)
    bad.fail(Stage.NMI, Fault.REFUSED, bmc_message="InternalError")

    report = run_crash([web01, web02], crash_request(), confirm=never, emit=events, audit=audit)

    assert [(o.host, o.status, o.exit_code) for o in report.outcomes] == [
        ("web01", "complete", 0),
        ("web02", "failed", 4),
    ]
    assert report.exit_code == 4
    assert (good.nmis_applied(), bad.nmis_applied()) == (1, 0)


def test_a_recent_nmi_refuses_before_the_probe(
    fleet: FakeFleet, audit: AuditLog, events: Events, dumps: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, bmc, probe = hung_host(fleet, dumps, monkeypatch)
    audit.record("nmi.sent", "web01", bmc=host.bmc.address, via="ipmi")

    report = run_crash([host], crash_request(), confirm=never, emit=events, audit=audit)

    assert [(o.status, o.exit_code) for o in report.outcomes] == [("refused", 7)]
    assert (probe.calls, bmc.logins(), bmc.nmis_applied()) == (0, 0, 0)


# -- the host after its dump ----------------------------------------------------------------------


def powers_off_after_its_dump(bmc: FakeBmc, dumps: Path, number: int = 1, name: str = "web01") -> None:
    """kdump's final action poweroff: the dump is written, then the host is off."""
    write_dump = kdump_on_nmi(dumps, identity=f"127.0.2.{number}", hostname=name)

    def crash(fake: FakeBmc, applied: Applied) -> None:
        write_dump(fake, applied)
        if applied.reset_type == "Nmi":
            fake.power = PowerState.OFF

    bmc.on_apply = crash


@dataclass
class BootsWhenPoweredOn:
    """The probe of a host that answers only once the BMC powered it on."""

    bmc: FakeBmc
    calls: int = 0

    def __call__(self, host: Host, timeout: float = 3.0) -> ProbeResult:
        self.calls += 1
        alive = "On" in self.bmc.power_actions_applied()
        return ProbeResult(alive, "ssh:fake:22", "answered (fake probe)" if alive else "did not answer")


def test_a_host_that_powers_off_after_its_dump_is_reported_at_once(
    fleet: FakeFleet, audit: AuditLog, events: Events, dumps: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, bmc, _ = hung_host(fleet, dumps, monkeypatch, after_nmi=False)
    powers_off_after_its_dump(bmc, dumps)

    # a grace of an hour: only the power state can end this wait
    report = run_crash([host], crash_request(reboot_grace_s=3600.0), confirm=never, emit=events, audit=audit)

    [outcome] = report.outcomes
    assert (outcome.status, outcome.exit_code) == ("complete", 0)
    assert outcome.after_dump is AfterDump.POWERED_OFF and outcome.host_back is False
    assert outcome.to_dict()["after_dump"] == "powered_off_after_dump"
    assert any("oob power web01 on" in note and "--recover" in note for note in outcome.notes)
    kinds = events.kinds("web01")
    assert "powered_off_after_dump" in kinds and "host_not_back" not in kinds
    assert bmc.power_actions_applied() == []  # nothing without --recover
    assert bmc.open_sessions() == 0
    assert [r["event"] for r in records(audit, host="web01")] == ["nmi.sending", "nmi.sent", "crash.result"]


def test_recover_powers_on_a_host_that_powered_off_after_its_dump(
    fleet: FakeFleet, audit: AuditLog, events: Events, dumps: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, bmc, _ = hung_host(fleet, dumps, monkeypatch)
    powers_off_after_its_dump(bmc, dumps)
    monkeypatch.setattr("oob.runbook.crash.probe_host", BootsWhenPoweredOn(bmc))

    report = run_crash(
        [host], crash_request(reboot_grace_s=3600.0, recover=True), confirm=never, emit=events, audit=audit
    )

    [outcome] = report.outcomes
    assert (outcome.status, outcome.exit_code, outcome.recovered) == ("complete", 0, True)
    assert outcome.after_dump is AfterDump.POWERED_OFF and outcome.host_back is True
    assert bmc.power_actions_applied() == ["On"]  # power on, not a power cycle
    [recovered] = [e for e in events.seen if e.kind == "recovered"]
    assert recovered.data["action"] == "on" and recovered.data["sent"]
    assert events.kinds("web01")[-3:] == ["recovered", "host_back", "bmc_log_entries"]
    assert [r["event"] for r in records(audit, host="web01")][-3:] == [
        "recover.on.sending",
        "recover.on.done",
        "crash.result",
    ]
    assert records(audit, "crash.result")[0]["recovered"] is True
    assert bmc.open_sessions() == 0


def test_a_host_that_reboots_is_back_and_its_bmc_is_not_asked(
    fleet: FakeFleet, audit: AuditLog, events: Events, dumps: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, bmc, _ = hung_host(fleet, dumps, monkeypatch)

    report = run_crash([host], crash_request(recover=True), confirm=never, emit=events, audit=audit)

    [outcome] = report.outcomes
    assert (outcome.after_dump, outcome.host_back, outcome.recovered) == (AfterDump.BACK, True, False)
    operations = [r.operation for r in bmc.requests]
    assert "power_state" not in operations[operations.index("nmi") :]
    assert bmc.power_actions_applied() == []


def test_a_failed_power_read_is_not_repeated(
    fleet: FakeFleet, audit: AuditLog, events: Events, dumps: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, bmc, _ = hung_host(fleet, dumps, monkeypatch, after_nmi=False)
    write_dump = kdump_on_nmi(dumps, identity="127.0.2.1", hostname="web01")

    def crash(fake: FakeBmc, applied: Applied) -> None:
        write_dump(fake, applied)
        fake.fail(Stage.LOGIN, Fault.AUTH)  # from now on, every login is refused

    bmc.on_apply = crash

    report = run_crash(
        [host],
        # the BMC's event log is read with one more login at the end: not this test's business
        crash_request(reboot_grace_s=1.0, power_read_every_s=0.0, read_bmc_log=False),
        confirm=never,
        emit=events,
        audit=audit,
    )

    [outcome] = report.outcomes
    assert (outcome.status, outcome.after_dump, outcome.host_back) == ("complete", AfterDump.NOT_BACK, False)
    operations = [r.operation for r in bmc.requests]
    assert operations[operations.index("nmi") :].count("login") == 1  # one refused login, not one a poll
    warnings = [e.message for e in events.seen if "cannot read the power state" in e.message]
    assert len(warnings) == 1 and "waiting for the probe only" in warnings[0]
    assert "host_not_back" in events.kinds("web01")


def test_a_stalled_dump_ends_the_watch_and_recover_cycles_it(
    fleet: FakeFleet, audit: AuditLog, events: Events, dumps: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, bmc, _ = hung_host(fleet, dumps, monkeypatch, writes_dump=False, after_nmi=False)

    def stalls(fake: FakeBmc, applied: Applied) -> None:
        if applied.reset_type == "Nmi":
            spec = DumpSpec(
                layout="rhel-nfs",
                identity="127.0.2.1",
                hostname="web01",
                size=64 * 1024,
                chunk=16 * 1024,
                boot_delay=0.0,
                dmesg_delay=0.0,
                fault="stall",
                fault_at=0.5,
            )
            list(KdumpWriter(dumps, spec, clock=ManualClock()).steps())

    bmc.on_apply = stalls
    # --timeout of a minute: only the stall (after 0.5 s without growth) ends this watch
    watch = WatchOptions(interval=0.02, stall_after=0.5, timeout=60.0, progress_every=0.05)

    report = run_crash(
        [host], crash_request(watch=watch, recover=True), confirm=never, emit=events, audit=audit
    )

    [outcome] = report.outcomes
    assert (outcome.status, outcome.exit_code, outcome.recovered) == ("stalled", 5, True)
    assert outcome.dump is not None and outcome.dump.state is DumpState.STALLED
    assert bmc.power_actions_applied() == ["PowerCycle"]
    recovering = [e for e in events.seen if e.kind == "recovering"]
    assert [e.data["reason"] for e in recovering] == ["the dump stalled"]


def test_the_bmc_event_log_around_the_nmi_is_read_when_the_watch_ends(
    fleet: FakeFleet, audit: AuditLog, events: Events, dumps: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, bmc, _ = hung_host(fleet, dumps, monkeypatch)
    report = run_crash([host], crash_request(reboot_grace_s=0.0), confirm=never, emit=events, audit=audit)
    [outcome] = report.outcomes
    assert outcome.status == "complete"
    assert outcome.bmc_log is not None and len(outcome.bmc_log.nmi_entries) == 1
    assert outcome.to_dict()["bmc_log"]["kept"] >= 1
    assert "bmc_log_entries" in events.kinds("web01")
    assert bmc.open_sessions() == 0
