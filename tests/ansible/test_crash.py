"""oob.oob.oob_crash under ansible-playbook: a hung mock host, one NMI, its complete dump and why it hung."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.ansible.conftest import PlaybookRun
from tests.conftest import write_inventory

#: fast waits for the mock at scale 0.02 (a crash takes about 1.2 s)
FAST = {"probe_timeout": 0.3, "interval": 0.1, "reboot_grace": "15s", "timeout": 30}


def test_crash_ends_with_the_complete_dump_and_its_verdict(
    fleet_factory: Callable[..., Any], playbook: Callable[..., PlaybookRun], tmp_path: Path
) -> None:
    from tests.unit.test_notify import Hook

    fleet = fleet_factory(
        ["idrac9"], ipmi=True, dump_root=tmp_path / "crash", hung=True, scale=0.02, hang_kind=["softlockup"]
    )
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    # no `inventory:`: the module reads $OOB_INVENTORY, as oob does
    args = {"targets": ["all"], "audit_log": str(tmp_path / "oob-audit.jsonl"), **FAST}
    hook = Hook()
    try:
        run = playbook(
            [
                {"oob.oob.oob_crash": args, "check_mode": True, "register": "planned"},
                {
                    "oob.oob.oob_crash": {**args, "notify": ["generic=env:OOB_TEST_HOOK"]},
                    "register": "crashed",
                },
            ],
            save=["planned", "crashed"],
            env={"OOB_INVENTORY": str(inventory), "OOB_TEST_HOOK": hook.url},
        )
    finally:
        hook.close()
    assert run.code == 0, run.output
    planned, crashed = run.saved["planned"], run.saved["crashed"]
    assert planned["changed"] is False and planned["sent"] == []
    assert [r["status"] for r in planned["results"]] == ["dry-run"]

    assert crashed["changed"] is True and crashed["exit_code"] == 0 and crashed["sent"] == ["idrac9-1"]
    assert crashed["summary"]["by_status"] == {"complete": 1}
    (result,) = crashed["results"]
    assert result["status"] == "complete" and result["nmi_at"] and result["host_back"] is True
    dump = result["dump"]
    assert dump["state"] == "complete" and dump["size"] > 0
    assert Path(dump["path"]).is_dir()
    assert Path(dump["path"]).parent == Path(fleet.host("idrac9-1").config.dump_target)
    verdict = dump["analysis"]["verdict"]
    assert verdict["kind"] == "soft_lockup", verdict
    assert fleet.bmc("idrac9-1").nmi_count == 1
    # the webhook heard each outcome once, the dump's with its verdict; its URL (the secret)
    # is in no output
    outcomes = sorted((body["host"], body["outcome"]) for _, body in hook.received)
    assert outcomes == [("idrac9-1", "dump_complete"), ("idrac9-1", "nmi_sent")]
    complete = next(body for _, body in hook.received if body["outcome"] == "dump_complete")
    assert complete["verdict"]["kind"] == "soft_lockup"
    assert "SECRET-TOKEN" not in run.output + json.dumps(run.saved)


def test_bad_input_is_one_line_and_exit_code_2(
    fleet_factory: Callable[..., Any], playbook: Callable[..., PlaybookRun], tmp_path: Path
) -> None:
    fleet = fleet_factory(["openbmc"], hung=True, dump_root=tmp_path / "crash", scale=0.02)
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    common = {"inventory": [str(inventory)], "audit_log": str(tmp_path / "oob-audit.jsonl")}
    run = playbook(
        [
            {
                "oob.oob.oob_crash": {"targets": ["nosuchhost"], **common},
                "register": "unknown_host",
                "ignore_errors": True,
            },
            {
                "oob.oob.oob_crash": {"targets": ["all"], "timeout": "soon", **common},
                "register": "bad_timeout",
                "ignore_errors": True,
            },
            {
                # a webhook URL holds a secret: references only
                "oob.oob.oob_crash": {"targets": ["all"], "notify": ["slack=http://127.0.0.1:9/x"], **common},
                "register": "literal_url",
                "ignore_errors": True,
            },
            {
                "oob.oob.oob_nmi": {"targets": ["all"], "inventory": [str(tmp_path / "missing.toml")]},
                "register": "no_inventory",
                "ignore_errors": True,
            },
        ],
        save=["unknown_host", "bad_timeout", "literal_url", "no_inventory"],
    )
    assert run.code == 0, run.output
    for name, words in (
        ("unknown_host", "nosuchhost"),
        ("bad_timeout", "timeout: 'soon' is not a duration"),
        ("literal_url", "give a reference (env:VAR, file:PATH or keyring:SERVICE/USER)"),
        ("no_inventory", "missing.toml"),
    ):
        result = run.saved[name]
        assert result["failed"] is True and result["exit_code"] == 2, (name, result)
        assert words in result["msg"] and "\n" not in result["msg"], (name, result["msg"])
        assert "Traceback" not in result["msg"] and "module_stderr" not in result
    assert fleet.bmc("openbmc-1").nmi_count == 0
    assert "Traceback" not in run.output
