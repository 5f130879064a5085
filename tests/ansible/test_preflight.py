"""oob.oob.oob_preflight under ansible-playbook: readiness of mock hosts over their simulated SSH."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.ansible.conftest import PlaybookRun
from tests.conftest import write_inventory


def test_preflight_returns_readiness_and_fails_for_a_host_that_is_not_ready(
    fleet_factory: Callable[..., Any], playbook: Callable[..., PlaybookRun], tmp_path: Path
) -> None:
    fleet = fleet_factory(
        ["ilo5", "openbmc"],
        ipmi=True,
        dump_root=tmp_path / "crash",
        layouts=["rhel", "debian"],
        scale=0.02,
        host_ssh=True,
    )
    fleet.host_ssh.configure("openbmc-1", loaded=False)  # no crash kernel loaded
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    ssh = {"known_hosts": str(fleet.host_ssh.known_hosts), "ssh_key": [str(fleet.host_ssh.client_key)]}
    args = {"inventory": [str(inventory)], **ssh}
    run = playbook(
        [
            {"oob.oob.oob_preflight": {"targets": ["ilo5-1"], **args}, "register": "one"},
            {
                "oob.oob.oob_preflight": {"targets": ["all"], **args},
                "register": "both",
                "ignore_errors": True,
            },
        ],
        save=["one", "both"],
    )
    assert run.code == 0, run.output
    one, both = run.saved["one"], run.saved["both"]

    assert one["changed"] is False and one["ready"] is True and one["exit_code"] == 0
    (ilo,) = one["results"]
    assert (ilo["host"], ilo["distro"], ilo["ready"]) == ("ilo5-1", "rhel", True)
    statuses = {c["check"]: c["status"] for c in ilo["checks"]}
    assert statuses["power"] == statuses["nmi"] == statuses["ssh"] == "ok"

    assert both["failed"] is True and both["changed"] is False
    assert both["ready"] is False and both["exit_code"] == 8
    assert both["summary"]["not_ready"] == ["openbmc-1"] and both["summary"]["ready"] == 1
    assert both["msg"].startswith("openbmc-1: not ready: ") and "\n" not in both["msg"]
    failed = [c["check"] for c in both["results"][1]["checks"] if c["status"] == "fail"]
    assert failed and all(name in both["msg"] for name in failed)
    assert "kexec_crash_loaded is 0" in both["msg"]
    # preflight changes nothing
    assert all(bmc.nmi_count == 0 for bmc in fleet.bmcs)
