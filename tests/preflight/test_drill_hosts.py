"""`oob drill` end to end: crash ready, healthy simulated hosts on purpose, over SSH or the BMC."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import CliResult, write_inventory

FAST = ("--probe-timeout", "0.3", "--interval", "0.1", "--reboot-grace", "15s", "--timeout", "20s")


def _fleet(fleet_factory: Callable[..., Any], tmp_path: Path, vendors: list[str], layouts: list[str]) -> Any:
    return fleet_factory(
        vendors, ipmi=True, dump_root=tmp_path / "crash", layouts=layouts, scale=0.02, host_ssh=True
    )


def _ssh(fleet: Any) -> tuple[str, ...]:
    return ("--known-hosts", str(fleet.host_ssh.known_hosts), "--ssh-key", str(fleet.host_ssh.client_key))


def _result(result: CliResult, host: str) -> dict[str, Any]:
    found = [r for r in result.records if r.get("event") == "result" and r["host"] == host]
    assert len(found) == 1, result.stdout + result.stderr
    return found[0]


def test_sysrq_drill_on_ready_hosts_ends_in_a_dump_and_the_host_back(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path, audit_path: Path
) -> None:
    fleet = _fleet(fleet_factory, tmp_path, ["ilo5", "openbmc"], ["rhel", "debian"])
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    result = oob("drill", "all", "-i", str(inventory), "--yes", "--json", *_ssh(fleet), *FAST)
    assert result.code == 0, result.stdout + result.stderr
    for bmc in fleet.bmcs:
        outcome = _result(result, bmc.name)
        assert outcome["drill"] == "pass" and outcome["method"] == "sysrq" and outcome["via"] == "sysrq"
        assert outcome["status"] == "complete" and outcome["host_back"] is True
        assert outcome["dump"]["state"] == "complete"
        assert Path(outcome["dump"]["path"]).parent == Path(fleet.host(bmc.name).config.dump_target)
        assert any("sysrq triggered crash" in line for line in outcome["dump"]["panic"])
        timings = outcome["timings"]
        assert 0 < timings["trigger_to_complete_s"] <= timings["trigger_to_back_s"] < 15
        assert outcome["ready"] is True
        assert bmc.nmi_count == 0  # the BMC was only asked, never used
        assert fleet.host(bmc.name).state.value == "running"
    kinds = [r["event"] for r in result.records]
    assert kinds.count("readiness") == 2 and kinds.count("sysrq_sent") == 2
    audit = [json.loads(line)["event"] for line in audit_path.read_text().splitlines()]
    assert audit.count("sysrq.sending") == 2 == audit.count("sysrq.sent")


def test_nmi_drill_through_the_bmc(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = _fleet(fleet_factory, tmp_path, ["idrac9"], ["suse"])
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    dry = oob("drill", "idrac9-1", "-i", str(inventory), "--dry-run", "--method", "nmi", *_ssh(fleet), *FAST)
    assert dry.code == 0 and "dry-run" in dry.stdout, dry.stdout + dry.stderr
    assert fleet.bmc("idrac9-1").nmi_count == 0
    result = oob(
        "drill", "idrac9-1", "-i", str(inventory), "--yes", "--json", "--method", "nmi", *_ssh(fleet), *FAST
    )
    assert result.code == 0, result.stdout + result.stderr
    outcome = _result(result, "idrac9-1")
    assert outcome["drill"] == "pass" and outcome["method"] == "nmi" and outcome["via"] == "redfish"
    assert any("NMI: Not continuing" in line for line in outcome["dump"]["panic"])
    assert fleet.bmc("idrac9-1").nmi_count == 1 and fleet.bmc("idrac9-1").open_sessions == 0
    # right after an NMI, a second one is refused (the audit log remembers); a dry run sends nothing
    again = oob(
        "drill", "idrac9-1", "-i", str(inventory), "--yes", "--json", "--method", "nmi", *_ssh(fleet), *FAST
    )
    assert again.code == 7 and "already sent" in _result(again, "idrac9-1")["message"]
    # any drill of the host, sysrq too, waits out the window unless --allow-repeat
    sysrq = oob("drill", "idrac9-1", "-i", str(inventory), "--dry-run", *_ssh(fleet), *FAST)
    assert sysrq.code == 7 and "refused" in sysrq.stdout
    assert fleet.bmc("idrac9-1").nmi_count == 1


def test_not_ready_host_is_refused_unless_forced(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = _fleet(fleet_factory, tmp_path, ["openbmc"], ["rhel"])
    fleet.host_ssh.configure("openbmc-1", loaded=False)
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    refused = oob("drill", "openbmc-1", "-i", str(inventory), "--yes", "--json", *_ssh(fleet), *FAST)
    assert refused.code == 7, refused.stdout + refused.stderr
    outcome = _result(refused, "openbmc-1")
    assert outcome["drill"] == "refused" and outcome["ready"] is False
    assert "not ready for a drill" in outcome["message"] and "kexec_crash_loaded is 0" in outcome["message"]
    assert fleet.host("openbmc-1").state.value == "running"
    assert not any(r.event == "sysrq_crash" for r in fleet.host("openbmc-1").history)
    # --force: the crash happens, and no dump comes (no crash kernel): exit 5
    forced = oob(
        "drill",
        "openbmc-1",
        "-i",
        str(inventory),
        "--yes",
        "--json",
        "--force",
        *_ssh(fleet),
        "--probe-timeout",
        "0.3",
        "--interval",
        "0.1",
        "--timeout",
        "2s",
    )
    assert forced.code == 5, forced.stdout + forced.stderr
    outcome = _result(forced, "openbmc-1")
    assert outcome["drill"] == "fail" and outcome["status"] == "timeout"
    assert any(r.event == "sysrq_crash" for r in fleet.host("openbmc-1").history)


def test_hung_host_is_not_drilled(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = _fleet(fleet_factory, tmp_path, ["xcc"], ["debian"])
    fleet.set_host_state("xcc-1", "hung")
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    result = oob("drill", "xcc-1", "-i", str(inventory), "--yes", "--json", *_ssh(fleet), *FAST)
    assert result.code == 7
    assert "does not look healthy" in _result(result, "xcc-1")["message"]
    assert fleet.bmc("xcc-1").nmi_count == 0
