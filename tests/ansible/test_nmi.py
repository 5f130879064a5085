"""oob.oob.oob_nmi under ansible-playbook against the mock fleet: one NMI, never two."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.ansible.conftest import PlaybookRun
from tests.conftest import write_inventory


def test_one_nmi_reported_check_mode_sends_none_and_a_second_run_is_refused(
    fleet_factory: Callable[..., Any], playbook: Callable[..., PlaybookRun], tmp_path: Path
) -> None:
    fleet = fleet_factory(["ilo5"], dump_root=tmp_path / "crash", hung=True, scale=0.02)
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    audit = tmp_path / "oob-audit.jsonl"
    args = {"targets": ["ilo5-1"], "inventory": [str(inventory)], "audit_log": str(audit)}
    run = playbook(
        [
            {"oob.oob.oob_nmi": args, "check_mode": True, "register": "planned"},
            {"oob.oob.oob_nmi": args, "register": "sent"},
            {"oob.oob.oob_nmi": args, "register": "again", "ignore_errors": True},
        ],
        save=["planned", "sent", "again"],
    )
    assert run.code == 0, run.output
    planned, sent, again = (run.saved[name] for name in ("planned", "sent", "again"))

    assert planned["changed"] is False and planned["exit_code"] == 0 and planned["sent"] == []
    assert [r["status"] for r in planned["results"]] == ["dry-run"]

    assert sent["changed"] is True and sent["exit_code"] == 0 and sent["sent"] == ["ilo5-1"]
    (result,) = sent["results"]
    assert (result["host"], result["action"], result["status"], result["via"]) == (
        "ilo5-1",
        "nmi",
        "ok",
        "redfish",
    )

    assert again["failed"] is True and again["changed"] is False and again["sent"] == []
    assert again["exit_code"] == 7
    assert again["msg"].startswith("ilo5-1: an NMI was already sent to this host")
    assert "\n" not in again["msg"]
    assert [r["error"] for r in again["results"]] == ["refused_for_safety"]

    # the mock BMC counts exactly the one NMI the play reported
    assert fleet.bmc("ilo5-1").nmi_count == 1
    assert fleet.bmc("ilo5-1").open_sessions == 0
    records = [line for line in audit.read_text().splitlines() if '"nmi.sent"' in line]
    assert len(records) == 1
    assert fleet.credentials.password not in run.output + audit.read_text()


def test_an_nmi_whose_answer_never_came_is_not_resent_by_ansibles_retries(
    fleet_factory: Callable[..., Any], playbook: Callable[..., PlaybookRun], tmp_path: Path
) -> None:
    fleet = fleet_factory(["openbmc"])
    inventory = write_inventory(fleet, tmp_path / "inv.toml", timeout=5)
    fleet.set_faults("openbmc-1", reset_after_apply=True)  # the NMI applied, the connection reset
    args = {"targets": ["openbmc-1"], "inventory": [str(inventory)], "audit_log": str(tmp_path / "a.jsonl")}
    first = {"oob.oob.oob_nmi": args, "register": "first", "ignore_errors": True}
    # a playbook that retries the task until it succeeds: every retry meets the repeat guard
    retried = {
        "oob.oob.oob_nmi": args,
        "register": "retried",
        "retries": 2,
        "delay": 0,
        "until": "retried is not failed",
        "ignore_errors": True,
    }
    run = playbook([first, retried], save=["first", "retried"])
    assert run.code == 0, run.output
    first_result, retried_result = run.saved["first"], run.saved["retried"]
    assert first_result["failed"] is True and first_result["exit_code"] == 6
    assert first_result["changed"] is True and first_result["sent"] == ["openbmc-1"]
    assert [r["status"] for r in first_result["results"]] == ["unknown"]
    assert retried_result["attempts"] >= 2 and retried_result["failed"] is True  # retried, every time refused
    assert retried_result["exit_code"] == 7 and retried_result["sent"] == []
    assert "already sent" in retried_result["msg"]
    assert fleet.bmc("openbmc-1").nmi_count == 1
    assert fleet.bmc("openbmc-1").open_sessions == 0
