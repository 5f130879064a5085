"""run_nmi in-process on fake BMCs: lock → audit check → plan → confirm → re-check →
record → send, exactly once per host."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

from oob.audit import AuditLog
from oob.drivers.fake import Advertise, FakeBmc, FakeFleet, Fault, Stage
from oob.locks import host_lock
from oob.model import Host, PowerState
from oob.runbook.nmi import CrashPlan, NmiRequest, run_nmi

from .conftest import Events, FailingAudit, make_host, never, records

YES = NmiRequest(assume_yes=True)


def test_one_nmi_per_planned_host(fleet: FakeFleet, audit: AuditLog, events: Events) -> None:
    hosts = [make_host(f"web0{i}", f"127.0.1.{i}") for i in range(1, 4)]
    bmcs = [fleet.add(h.bmc.address) for h in hosts]

    outcomes = run_nmi(hosts, YES, confirm=never, emit=events, audit=audit)

    assert [(o.host, o.status, o.exit_code, o.via) for o in outcomes] == [
        (h.name, "ok", 0, "redfish") for h in hosts
    ]
    assert [b.nmis_applied() for b in bmcs] == [1, 1, 1]
    assert [b.logins("ipmi") for b in bmcs] == [0, 0, 0]
    assert outcomes[0].detail["http_status"] == 204
    for host in hosts:
        assert [r["event"] for r in records(audit, host=host.name)] == ["nmi.sending", "nmi.sent"]
    assert records(audit, "nmi.confirmed")[0]["hosts"] == [h.name for h in hosts]
    assert events.kinds().count("nmi_sent") == 3


def test_the_confirmation_sees_every_plan_and_yes_sends(
    fleet: FakeFleet, audit: AuditLog, events: Events
) -> None:
    hosts = [make_host("web01", "127.0.1.1"), make_host("web02", "127.0.1.2")]
    bmcs = [fleet.add(h.bmc.address) for h in hosts]
    asked: list[list[CrashPlan]] = []

    def confirm(plans: list[CrashPlan]) -> bool:
        asked.append(plans)
        assert sum(b.nmis_applied() for b in bmcs) == 0  # asked before anything is sent
        return True

    outcomes = run_nmi(hosts, NmiRequest(), confirm=confirm, emit=events, audit=audit)

    assert [[(p.host.name, p.method, p.power) for p in plans] for plans in asked] == [
        [("web01", "redfish", PowerState.ON), ("web02", "redfish", PowerState.ON)]
    ]
    assert [o.status for o in outcomes] == ["ok", "ok"]
    assert [b.nmis_applied() for b in bmcs] == [1, 1]


def test_power_off_is_refused(fleet: FakeFleet, audit: AuditLog, events: Events) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add(host.bmc.address, FakeBmc(power=PowerState.OFF))

    [outcome] = run_nmi([host], YES, confirm=never, emit=events, audit=audit)

    assert (outcome.status, outcome.exit_code, outcome.via) == ("refused", 7, "redfish")
    assert outcome.error is not None and "power is Off" in outcome.error.message
    assert bmc.nmis_applied() == 0
    assert records(audit, "nmi.sending") == []


def test_power_gone_off_after_the_confirmation_is_refused(
    fleet: FakeFleet, audit: AuditLog, events: Events
) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add(host.bmc.address)

    def confirm(plans: list[CrashPlan]) -> bool:
        bmc.power = PowerState.OFF  # someone powered it off while the engineer read the plan
        return True

    [outcome] = run_nmi([host], NmiRequest(), confirm=confirm, emit=events, audit=audit)

    assert (outcome.status, outcome.exit_code) == ("refused", 7)
    assert outcome.error is not None and "went Off" in outcome.error.message
    assert bmc.nmis_applied() == 0


def test_nmi_not_offered_on_redfish_falls_back_to_ipmi(
    fleet: FakeFleet, audit: AuditLog, events: Events
) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add(host.bmc.address, FakeBmc(reset_types=("On", "ForceOff", "ForceRestart")))

    [outcome] = run_nmi([host], YES, confirm=never, emit=events, audit=audit)

    assert (outcome.status, outcome.exit_code, outcome.via) == ("ok", 0, "ipmi")
    assert outcome.fallback_reason is not None
    assert outcome.fallback_reason.startswith("redfish: NMI not supported")
    assert outcome.detail["completion_code"] == 0
    assert (bmc.nmis_applied("redfish"), bmc.nmis_applied("ipmi")) == (0, 1)
    assert "fallback" in events.kinds("web01")
    assert records(audit, "nmi.sent")[0]["via"] == "ipmi"


def test_nmi_unadvertised_is_sent_with_a_warning(fleet: FakeFleet, audit: AuditLog, events: Events) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add(host.bmc.address, FakeBmc(advertise=Advertise.NONE))

    [outcome] = run_nmi([host], YES, confirm=never, emit=events, audit=audit)

    assert (outcome.status, outcome.via) == ("ok", "redfish")
    assert any("does not list the ResetType values" in w for w in outcome.warnings)
    assert bmc.nmis_applied("redfish") == 1


def test_redfish_unreachable_falls_back_to_ipmi(fleet: FakeFleet, audit: AuditLog, events: Events) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add(host.bmc.address, FakeBmc(methods=frozenset({"ipmi"})))

    [outcome] = run_nmi([host], YES, confirm=never, emit=events, audit=audit)

    assert (outcome.status, outcome.via) == ("ok", "ipmi")
    assert outcome.fallback_reason is not None and outcome.fallback_reason.startswith(
        "redfish: connection refused"
    )
    assert (bmc.logins("redfish"), bmc.nmis_applied("ipmi")) == (1, 1)


def test_an_ilo_whose_ipmi_does_not_answer_gets_its_hint_once(
    fleet: FakeFleet, audit: AuditLog, events: Events
) -> None:
    host = make_host("web01", "127.0.1.1", kind="ilo")
    bmc = fleet.add(host.bmc.address, FakeBmc(reset_types=("On", "ForceOff", "ForceRestart")))
    bmc.fail(Stage.LOGIN, Fault.UNREACHABLE, method="ipmi", message="no answer to IPMI session setup")

    [outcome] = run_nmi([host], YES, confirm=never, emit=events, audit=audit)

    assert outcome.error is not None
    assert outcome.error.message.count("HPE iLO ships with IPMI over LAN disabled") == 1
    assert "Security > Access Settings > IPMI/DCMI over LAN" in outcome.error.message
    assert bmc.nmis_applied() == 0


def test_auth_failure_on_redfish_does_not_try_ipmi(fleet: FakeFleet, audit: AuditLog, events: Events) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add(host.bmc.address)
    bmc.fail(Stage.LOGIN, Fault.AUTH, method="redfish", message="the BMC refused the credentials")

    [outcome] = run_nmi([host], YES, confirm=never, emit=events, audit=audit)

    assert (outcome.status, outcome.exit_code) == ("failed", 3)
    assert outcome.error is not None and outcome.error.kind == "auth"
    assert "the BMC refused the credentials" in outcome.error.message
    assert "not trying ipmi with the same credentials" in outcome.error.message
    assert (bmc.logins("redfish"), bmc.logins("ipmi")) == (1, 0)
    assert bmc.nmis_applied() == 0


def test_a_certificate_failure_is_never_a_reason_to_use_ipmi(
    fleet: FakeFleet, audit: AuditLog, events: Events
) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add(host.bmc.address)
    bmc.fail(Stage.LOGIN, Fault.TLS, method="redfish", message="certificate of the BMC is not trusted")

    [outcome] = run_nmi([host], YES, confirm=never, emit=events, audit=audit)

    assert (outcome.status, outcome.exit_code) == ("failed", 3)
    assert outcome.error is not None and outcome.error.kind == "tls"
    assert "a certificate problem is never a reason to use another method" in outcome.error.message
    assert (bmc.logins("redfish"), bmc.logins("ipmi")) == (1, 0)
    assert bmc.nmis_applied() == 0


def test_every_method_unreachable_names_each(fleet: FakeFleet, audit: AuditLog, events: Events) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add(host.bmc.address, FakeBmc(methods=frozenset()))

    [outcome] = run_nmi([host], YES, confirm=never, emit=events, audit=audit)

    assert (outcome.status, outcome.exit_code) == ("failed", 3)
    assert outcome.error is not None
    assert "redfish: connection refused" in outcome.error.message
    assert "ipmi: connection refused" in outcome.error.message
    assert outcome.fallback_reason is not None and outcome.fallback_reason.startswith("redfish:")
    assert (bmc.logins("redfish"), bmc.logins("ipmi"), bmc.nmis_applied()) == (1, 1, 0)


def test_outcome_unknown_after_apply_is_never_retried(
    fleet: FakeFleet, audit: AuditLog, events: Events
) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add(host.bmc.address)
    bmc.fail(Stage.NMI, Fault.OUTCOME_UNKNOWN, method="redfish", applied=True, message="read timed out")

    [outcome] = run_nmi([host], YES, confirm=never, emit=events, audit=audit)

    assert (outcome.status, outcome.exit_code, outcome.via) == ("unknown", 6, "redfish")
    assert bmc.nmis_applied() == 1  # it did arrive; oob cannot know, and must not send another
    assert bmc.logins("ipmi") == 0
    assert [r["event"] for r in records(audit, host="web01")] == ["nmi.sending", "nmi.failed"]
    assert records(audit, "nmi.failed")[0]["error"] == "outcome_unknown"
    assert "nmi_outcome_unknown" in events.kinds("web01")


def test_a_bug_while_sending_counts_as_maybe_sent(fleet: FakeFleet, audit: AuditLog, events: Events) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add(host.bmc.address)
    bmc.fail(Stage.NMI, Fault.BUG, applied=True, bug=KeyError, message="Location")

    [outcome] = run_nmi([host], YES, confirm=never, emit=events, audit=audit)

    assert (outcome.status, outcome.exit_code) == ("unknown", 6)
    assert outcome.error is not None and "may have been applied" in outcome.error.message
    assert (bmc.nmis_applied(), bmc.logins("ipmi")) == (1, 0)
    assert [r["event"] for r in records(audit, host="web01")] == ["nmi.sending", "nmi.failed"]


def test_refused_at_send_time_does_not_switch_method(
    fleet: FakeFleet, audit: AuditLog, events: Events
) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add(host.bmc.address)
    bmc.fail(Stage.NMI, Fault.REFUSED, method="redfish", bmc_message="ActionNotSupported")

    [outcome] = run_nmi([host], YES, confirm=never, emit=events, audit=audit)

    assert (outcome.status, outcome.exit_code, outcome.via) == ("failed", 4, "redfish")
    assert outcome.error is not None and outcome.error.bmc_message == "ActionNotSupported"
    assert (bmc.nmis_applied(), bmc.logins("ipmi")) == (0, 0)


def test_second_run_within_the_window_is_refused_unless_forced(
    fleet: FakeFleet, audit: AuditLog, events: Events
) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add(host.bmc.address)

    [first] = run_nmi([host], YES, confirm=never, emit=events, audit=audit)
    logins = bmc.logins()
    [second] = run_nmi([host], YES, confirm=never, emit=events, audit=AuditLog(audit.path))

    assert first.status == "ok"
    assert (second.status, second.exit_code) == ("refused", 7)
    assert second.error is not None and "already sent" in second.error.message
    assert bmc.nmis_applied() == 1
    assert bmc.logins() == logins  # refused before the BMC was asked anything

    [forced] = run_nmi(
        [host],
        NmiRequest(assume_yes=True, allow_repeat=True),
        confirm=never,
        emit=events,
        audit=AuditLog(audit.path),
    )
    assert (forced.status, forced.exit_code) == ("ok", 0)
    assert bmc.nmis_applied() == 2


def test_an_nmi_outside_the_window_does_not_refuse(fleet: FakeFleet, audit: AuditLog, events: Events) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add(host.bmc.address)
    audit.record("nmi.sent", "web01", bmc=host.bmc.address, via="redfish")

    [outcome] = run_nmi(
        [host], NmiRequest(assume_yes=True, repeat_window_s=1e-9), confirm=never, emit=events, audit=audit
    )

    assert outcome.status == "ok"
    assert bmc.nmis_applied() == 1


def test_the_guard_is_keyed_on_the_bmc_address(fleet: FakeFleet, audit: AuditLog, events: Events) -> None:
    first = make_host("web01", "127.0.1.1")
    other_name = make_host("web01.example.net", "127.0.1.1")  # another inventory, the same machine
    bmc = fleet.add("127.0.1.1")

    run_nmi([first], YES, confirm=never, emit=events, audit=audit)
    [outcome] = run_nmi([other_name], YES, confirm=never, emit=events, audit=AuditLog(audit.path))

    assert (outcome.status, outcome.exit_code) == ("refused", 7)
    assert outcome.error is not None and "as 'web01', same BMC 127.0.1.1" in outcome.error.message
    assert bmc.nmis_applied() == 1


def test_two_hosts_on_one_bmc_in_one_run_are_both_refused(
    fleet: FakeFleet, audit: AuditLog, events: Events
) -> None:
    hosts = [make_host("web01", "127.0.1.1"), make_host("web01-copy", "127.0.1.1")]
    bmc = fleet.add("127.0.1.1")

    outcomes = run_nmi(hosts, YES, confirm=never, emit=events, audit=audit)

    assert [(o.status, o.exit_code) for o in outcomes] == [("refused", 7), ("refused", 7)]
    assert (bmc.logins(), bmc.nmis_applied()) == (0, 0)


def test_a_host_locked_by_another_run_is_refused(fleet: FakeFleet, audit: AuditLog, events: Events) -> None:
    hosts = [make_host("web01", "127.0.1.1"), make_host("web02", "127.0.1.2")]
    bmcs = [fleet.add(h.bmc.address) for h in hosts]

    with host_lock(audit.lock_dir, "web01", bmc="127.0.1.1"):  # another oob run holds web01
        outcomes = run_nmi(hosts, YES, confirm=never, emit=events, audit=audit)

    assert [(o.status, o.exit_code) for o in outcomes] == [("refused", 7), ("ok", 0)]
    assert outcomes[0].error is not None and "locked by another oob run" in outcomes[0].error.message
    assert [b.nmis_applied() for b in bmcs] == [0, 1]
    assert bmcs[0].logins() == 0


def test_dry_run_sends_nothing(fleet: FakeFleet, audit: AuditLog, events: Events) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add(host.bmc.address)

    [outcome] = run_nmi([host], NmiRequest(dry_run=True), confirm=never, emit=events, audit=audit)

    assert (outcome.status, outcome.exit_code, outcome.via) == ("dry-run", 0, "redfish")
    assert outcome.detail["would_send"] is True
    assert bmc.logins("redfish") == 1  # it did look
    assert bmc.nmis_applied() == 0
    assert records(audit) == []


def test_not_confirmed_sends_nothing(fleet: FakeFleet, audit: AuditLog, events: Events) -> None:
    hosts = [make_host("web01", "127.0.1.1"), make_host("web02", "127.0.1.2")]
    bmcs = [fleet.add(h.bmc.address) for h in hosts]

    outcomes = run_nmi(hosts, NmiRequest(), confirm=lambda plans: False, emit=events, audit=audit)

    assert [(o.status, o.exit_code) for o in outcomes] == [("refused", 7), ("refused", 7)]
    assert all(o.error is not None and "not confirmed" in o.error.message for o in outcomes)
    assert [b.nmis_applied() for b in bmcs] == [0, 0]
    assert records(audit) == []


def test_cancel_during_the_confirmation_sends_nothing(
    fleet: FakeFleet, audit: AuditLog, events: Events
) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add(host.bmc.address)
    cancel = threading.Event()

    def confirm(plans: list[CrashPlan]) -> bool:
        cancel.set()  # Ctrl-C right as the engineer typed yes
        return True

    [outcome] = run_nmi([host], NmiRequest(), confirm=confirm, emit=events, audit=audit, cancel=cancel)

    assert (outcome.status, outcome.exit_code) == ("refused", 7)
    assert outcome.error is not None and "interrupted before the NMI" in outcome.error.message
    assert bmc.nmis_applied() == 0
    assert records(audit, "nmi.sending") == []
    assert records(audit, "run.interrupted")[0]["hosts"] == {"web01": "refused"}


def test_cancel_before_the_run_sends_nothing(fleet: FakeFleet, audit: AuditLog, events: Events) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add(host.bmc.address)
    cancel = threading.Event()
    cancel.set()

    [outcome] = run_nmi([host], YES, confirm=never, emit=events, audit=audit, cancel=cancel)

    assert (outcome.status, outcome.exit_code) == ("refused", 7)
    assert bmc.nmis_applied() == 0


def test_a_bug_in_one_hosts_plan_keeps_the_others_results(
    fleet: FakeFleet, audit: AuditLog, events: Events
) -> None:
    hosts = [make_host(f"web0{i}", f"127.0.1.{i}") for i in range(1, 4)]
    bmcs = [fleet.add(h.bmc.address) for h in hosts]
    bmcs[1].fail(Stage.READ, Fault.BUG, bug=ZeroDivisionError, message="division by zero")

    outcomes = run_nmi(
        hosts, NmiRequest(assume_yes=True, parallel=3), confirm=never, emit=events, audit=audit
    )

    assert [(o.status, o.exit_code) for o in outcomes] == [("ok", 0), ("failed", 1), ("ok", 0)]
    assert outcomes[1].error is not None and "ZeroDivisionError" in outcomes[1].error.message
    assert [b.nmis_applied() for b in bmcs] == [1, 0, 1]
    assert bmcs[1].logins("ipmi") == 0  # a bug is not a reason to try the next method


def test_unwritable_audit_log_at_the_confirmation_sends_nothing(
    fleet: FakeFleet, audit: AuditLog, events: Events
) -> None:
    hosts = [make_host("web01", "127.0.1.1"), make_host("web02", "127.0.1.2")]
    bmcs = [fleet.add(h.bmc.address) for h in hosts]

    def confirm(plans: list[CrashPlan]) -> bool:
        audit.path.mkdir(parents=True)  # the log's path stops being a file it can append to
        return True

    outcomes = run_nmi(hosts, NmiRequest(), confirm=confirm, emit=events, audit=audit)

    assert [(o.status, o.exit_code) for o in outcomes] == [("failed", 2), ("failed", 2)]
    assert all(o.error is not None and o.error.kind == "audit_log" for o in outcomes)
    assert all("nothing was sent" in o.error.message for o in outcomes if o.error)
    assert [b.nmis_applied() for b in bmcs] == [0, 0]


def test_unwritable_audit_log_before_the_send_sends_nothing(
    fleet: FakeFleet, tmp_path: Path, events: Events
) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add(host.bmc.address)
    audit = FailingAudit(tmp_path / "audit.jsonl", {"nmi.sending"})

    [outcome] = run_nmi([host], YES, confirm=never, emit=events, audit=audit)

    assert (outcome.status, outcome.exit_code) == ("failed", 2)
    assert outcome.error is not None and outcome.error.kind == "audit_log"
    assert bmc.nmis_applied() == 0
    assert [r["event"] for r in records(audit)] == ["nmi.confirmed"]


def test_unreadable_audit_log_refuses_before_asking_the_bmc(
    fleet: FakeFleet, audit: AuditLog, events: Events
) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add(host.bmc.address)
    audit.path.parent.mkdir(parents=True)
    audit.path.symlink_to(audit.path.parent / "elsewhere")

    [outcome] = run_nmi([host], YES, confirm=never, emit=events, audit=audit)

    assert (outcome.status, outcome.exit_code) == ("failed", 2)
    assert (bmc.logins(), bmc.nmis_applied()) == (0, 0)


def test_an_unrecorded_success_is_reported_as_sent(fleet: FakeFleet, tmp_path: Path, events: Events) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add(host.bmc.address)
    audit = FailingAudit(tmp_path / "audit.jsonl", {"nmi.sent"})

    [outcome] = run_nmi([host], YES, confirm=never, emit=events, audit=audit)

    assert (outcome.status, outcome.exit_code) == ("ok", 0)
    assert any("'nmi.sent' is missing" in w for w in outcome.warnings)
    assert bmc.nmis_applied() == 1


def _virtual_bmc(name: str, port: int) -> Host:
    # VirtualBMC: one address, one IPMI port per guest
    host = make_host(name, "127.0.1.9", kind="ipmi", methods=("ipmi",))
    return replace(host, bmc=replace(host.bmc, ipmi_port=port))


def test_bmcs_on_one_address_with_their_own_ports_are_different_machines(
    fleet: FakeFleet, audit: AuditLog, events: Events
) -> None:
    first, second = _virtual_bmc("vm-a", 6230), _virtual_bmc("vm-b", 6231)
    bmc_a, bmc_b = fleet.add("vm-a"), fleet.add("vm-b")

    outcomes = run_nmi([first, second], YES, confirm=never, emit=events, audit=audit)
    assert [o.status for o in outcomes] == ["ok", "ok"]
    # a later run for the second guest alone is not refused for the first one's NMI
    again = replace(second, name="vm-b-renamed")
    [refused] = run_nmi([again], YES, confirm=never, emit=events, audit=AuditLog(audit.path))
    assert refused.status == "refused"
    assert refused.error is not None and "as 'vm-b'" in refused.error.message
    assert (bmc_a.nmis_applied(), bmc_b.nmis_applied()) == (1, 1)


def test_a_refusal_after_the_sending_record_does_not_count_as_a_sent_nmi(
    fleet: FakeFleet, audit: AuditLog, events: Events
) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add(host.bmc.address)
    refusal = bmc.fail(Stage.NMI, Fault.REFUSED, method="redfish", times=1, bmc_message="Busy")

    [first] = run_nmi([host], YES, confirm=never, emit=events, audit=audit)
    assert (first.status, first.exit_code) == ("failed", 4)
    assert [r["event"] for r in records(audit, host="web01")] == ["nmi.sending", "nmi.failed"]

    # nothing left: the next run is not refused as "already sent", and it sends
    [second] = run_nmi([host], YES, confirm=never, emit=events, audit=AuditLog(audit.path))
    assert second.status == "ok", second.error
    assert bmc.nmis_applied() == 1
    assert refusal is not None

    # and that one did arrive: a third is refused
    [third] = run_nmi([host], YES, confirm=never, emit=events, audit=AuditLog(audit.path))
    assert (third.status, third.exit_code) == ("refused", 7)


def test_an_outcome_unknown_still_counts_as_sent(fleet: FakeFleet, audit: AuditLog, events: Events) -> None:
    host = make_host("web01", "127.0.1.1")
    bmc = fleet.add(host.bmc.address)
    bmc.fail(
        Stage.NMI, Fault.OUTCOME_UNKNOWN, method="redfish", applied=True, times=1, message="read timed out"
    )

    [first] = run_nmi([host], YES, confirm=never, emit=events, audit=audit)
    assert first.status == "unknown"
    [second] = run_nmi([host], YES, confirm=never, emit=events, audit=AuditLog(audit.path))
    assert (second.status, second.exit_code) == ("refused", 7)
    assert bmc.nmis_applied() == 1
