"""run_power in-process on fake BMCs: status, confirmed actions, fallback, the lock."""

from __future__ import annotations

from pathlib import Path

from oob.audit import AuditLog
from oob.drivers.fake import FakeBmc, FakeFleet, Fault, Stage
from oob.locks import host_lock
from oob.model import Host, PowerState
from oob.runbook.methods import DriverOptions
from oob.runbook.power import PowerRequest, run_power

from .conftest import Events, FailingAudit, make_host, never, records


def test_status_of_each_host(fleet: FakeFleet, audit: AuditLog, events: Events) -> None:
    hosts = [make_host("web01", "127.0.1.1"), make_host("web02", "127.0.1.2")]
    fleet.add("127.0.1.1")
    off = fleet.add("127.0.1.2", FakeBmc(power=PowerState.OFF))

    outcomes = run_power(hosts, PowerRequest("status"), confirm=never, emit=events, audit=audit)

    assert [(o.action, o.status, o.via, o.detail["power"]) for o in outcomes] == [
        ("power.status", "ok", "redfish", "On"),
        ("power.status", "ok", "redfish", "Off"),
    ]
    assert off.power_actions_applied() == []
    assert records(audit) == []


def test_status_falls_back_to_ipmi(fleet: FakeFleet, audit: AuditLog, events: Events) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add("127.0.1.1")
    bmc.fail(Stage.LOGIN, Fault.UNREACHABLE, method="redfish", message="connection timed out")

    [outcome] = run_power([host], PowerRequest("status"), confirm=never, emit=events, audit=audit)

    assert (outcome.status, outcome.via, outcome.detail["power"]) == ("ok", "ipmi", "On")
    assert outcome.fallback_reason == "redfish: connection timed out"


def test_status_with_a_forced_method_tries_only_that_one(
    fleet: FakeFleet, audit: AuditLog, events: Events
) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add("127.0.1.1", FakeBmc(methods=frozenset({"redfish"})))

    [outcome] = run_power(
        [host], PowerRequest("status", DriverOptions(via="ipmi")), confirm=never, emit=events, audit=audit
    )

    assert (outcome.status, outcome.exit_code) == ("failed", 3)
    assert (bmc.logins("redfish"), bmc.logins("ipmi")) == (0, 1)


def test_a_destructive_action_is_confirmed_then_applied(
    fleet: FakeFleet, audit: AuditLog, events: Events
) -> None:
    hosts = [make_host("web01", "127.0.1.1"), make_host("web02", "127.0.1.2")]
    bmcs = [fleet.add(h.bmc.address) for h in hosts]
    asked: list[tuple[list[str], str]] = []

    def confirm(asked_hosts: list[Host], action: str) -> bool:
        asked.append(([h.name for h in asked_hosts], action))
        return True

    outcomes = run_power(hosts, PowerRequest("off"), confirm=confirm, emit=events, audit=audit)

    assert asked == [(["web01", "web02"], "off")]
    assert [(o.action, o.status, o.exit_code, o.detail["sent"]) for o in outcomes] == [
        ("power.off", "ok", 0, ["ForceOff"]),
        ("power.off", "ok", 0, ["ForceOff"]),
    ]
    assert [b.power_actions_applied() for b in bmcs] == [["ForceOff"], ["ForceOff"]]
    assert [b.power for b in bmcs] == [PowerState.OFF, PowerState.OFF]
    assert [r["event"] for r in records(audit, host="web01")] == ["power.off.sending", "power.off.done"]


def test_a_destructive_action_not_confirmed_is_not_sent(
    fleet: FakeFleet, audit: AuditLog, events: Events
) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add("127.0.1.1")

    [outcome] = run_power(
        [host], PowerRequest("reset"), confirm=lambda hosts, action: False, emit=events, audit=audit
    )

    assert (outcome.status, outcome.exit_code) == ("refused", 7)
    assert (bmc.logins(), bmc.power_actions_applied()) == (0, [])
    assert records(audit) == []


def test_power_on_is_not_asked(fleet: FakeFleet, audit: AuditLog, events: Events) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add("127.0.1.1", FakeBmc(power=PowerState.OFF))

    [outcome] = run_power([host], PowerRequest("on"), confirm=never, emit=events, audit=audit)

    assert (outcome.status, outcome.detail["sent"]) == ("ok", ["On"])
    assert bmc.power is PowerState.ON


def test_dry_run_applies_nothing(fleet: FakeFleet, audit: AuditLog, events: Events) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add("127.0.1.1")

    [outcome] = run_power(
        [host], PowerRequest("cycle", dry_run=True), confirm=never, emit=events, audit=audit
    )

    assert (outcome.status, outcome.detail["would_send"]) == ("dry-run", "cycle")
    assert (bmc.logins(), bmc.power_actions_applied()) == (0, [])


def test_an_action_redfish_does_not_offer_falls_back_to_ipmi(
    fleet: FakeFleet, audit: AuditLog, events: Events
) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add("127.0.1.1", FakeBmc(reset_types=("On", "Nmi")))

    [outcome] = run_power(
        [host], PowerRequest("off", assume_yes=True), confirm=never, emit=events, audit=audit
    )

    assert (outcome.status, outcome.via) == ("ok", "ipmi")
    assert outcome.fallback_reason is not None and "power off is not offered" in outcome.fallback_reason
    assert outcome.detail["sent"] == ["chassis control 0x00 (power down)"]
    assert (bmc.power_actions_applied("redfish"), bmc.power_actions_applied("ipmi")) == ([], ["ForceOff"])
    assert [r["event"] for r in records(audit, host="web01")] == [
        "power.off.sending",
        "power.off.failed",
        "power.off.sending",
        "power.off.done",
    ]


def test_cycle_without_powercycle_is_off_then_on(fleet: FakeFleet, audit: AuditLog, events: Events) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add("127.0.1.1", FakeBmc(reset_types=("On", "ForceOff", "Nmi")))

    [outcome] = run_power(
        [host], PowerRequest("cycle", assume_yes=True), confirm=never, emit=events, audit=audit
    )

    assert (outcome.status, outcome.via, outcome.detail["sent"]) == ("ok", "redfish", ["ForceOff", "On"])
    assert bmc.power_actions_applied() == ["ForceOff", "On"]


def test_an_unknown_outcome_is_not_tried_again_by_ipmi(
    fleet: FakeFleet, audit: AuditLog, events: Events
) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add("127.0.1.1")
    bmc.fail(Stage.POWER, Fault.OUTCOME_UNKNOWN, method="redfish", applied=True)

    [outcome] = run_power(
        [host], PowerRequest("reset", assume_yes=True), confirm=never, emit=events, audit=audit
    )

    assert (outcome.status, outcome.exit_code) == ("unknown", 6)
    assert (bmc.power_actions_applied(), bmc.logins("ipmi")) == (["ForceRestart"], 0)
    assert [r["event"] for r in records(audit, host="web01")] == ["power.reset.sending", "power.reset.failed"]


def test_a_locked_host_is_refused(fleet: FakeFleet, audit: AuditLog, events: Events) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add("127.0.1.1")

    with host_lock(audit.lock_dir, "web01", bmc="127.0.1.1"):
        [outcome] = run_power(
            [host], PowerRequest("off", assume_yes=True), confirm=never, emit=events, audit=audit
        )

    assert (outcome.status, outcome.exit_code) == ("refused", 7)
    assert (bmc.logins(), bmc.power_actions_applied()) == (0, [])


def test_the_lock_is_held_on_the_bmc_address_too(fleet: FakeFleet, audit: AuditLog, events: Events) -> None:
    host = make_host("web01.example.net", "127.0.1.1")
    bmc = fleet.add("127.0.1.1")

    with host_lock(audit.lock_dir, "web01", bmc="127.0.1.1"):  # the same machine under another name
        [outcome] = run_power(
            [host], PowerRequest("off", assume_yes=True), confirm=never, emit=events, audit=audit
        )

    assert (outcome.status, outcome.exit_code) == ("refused", 7)
    assert outcome.error is not None and "its BMC 127.0.1.1" in outcome.error.message
    assert bmc.power_actions_applied() == []


def test_the_audit_record_failing_before_the_action_sends_nothing(
    fleet: FakeFleet, tmp_path: Path, events: Events
) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add("127.0.1.1")
    audit = FailingAudit(tmp_path / "audit.jsonl", {"power.off.sending"})

    [outcome] = run_power(
        [host], PowerRequest("off", assume_yes=True), confirm=never, emit=events, audit=audit
    )

    assert (outcome.status, outcome.exit_code) == ("failed", 2)
    assert bmc.power_actions_applied() == []
    assert bmc.logins("ipmi") == 0
