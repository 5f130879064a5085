"""`oob nmi` over Redfish against every mock flavour, over real sockets."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult, write_inventory

NMI_FLAVOURS = [
    "ilo5",
    "ilo5-slash",
    "idrac9",
    "idrac9-old",
    "openbmc",
    "supermicro",
    "supermicro-x12",
    "xcc",
    "intel",
    "dmtf",
]


@pytest.mark.parametrize("vendor", NMI_FLAVOURS)
def test_nmi_reaches_every_flavour_exactly_once(
    vendor: str,
    fleet_factory: Callable[..., Any],
    oob: Callable[..., CliResult],
    tmp_path: Path,
    audit_path: Path,
) -> None:
    fleet = fleet_factory([vendor])
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    name = f"{vendor}-1"
    result = oob("nmi", name, "-i", str(inventory), "--yes", "--json")
    assert result.code == 0, result.stderr
    record = result.record(name)
    assert record["status"] == "ok"
    assert record["via"] == "redfish"
    bmc = fleet.bmc(name)
    assert bmc.nmi_count == 1
    assert bmc.open_sessions == 0
    events = [json.loads(line)["event"] for line in audit_path.read_text().splitlines()]
    assert events.index("nmi.sending") < events.index("nmi.sent")


def test_ami_without_nmi_exits_4_with_the_reason(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["ami"])
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    result = oob("nmi", "ami-1", "-i", str(inventory), "--yes", "--via", "redfish", "--json")
    assert result.code == 4, result.stderr
    record = result.record("ami-1")
    assert record["error"] == "unsupported"
    assert "NMI not supported by this BMC" in record["message"]
    assert "GracefulShutdown" in record["message"]  # says what it does offer
    assert fleet.bmc("ami-1").nmi_count == 0
    assert fleet.bmc("ami-1").open_sessions == 0


def test_read_timeout_after_apply_is_outcome_unknown_and_never_resent(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path, audit_path: Path
) -> None:
    fleet = fleet_factory(["idrac9"])
    inventory = write_inventory(fleet, tmp_path / "inv.toml", timeout=2)
    fleet.set_faults("idrac9-1", read_timeout_after_apply=True)
    result = oob("nmi", "idrac9-1", "-i", str(inventory), "--yes", "--json")
    assert result.code == 6, result.stderr
    assert result.record("idrac9-1")["status"] == "unknown"
    assert "NOT resending" in result.stderr
    bmc = fleet.bmc("idrac9-1")
    assert bmc.nmi_count == 1
    assert bmc.open_sessions == 0
    events = [json.loads(line)["event"] for line in audit_path.read_text().splitlines()]
    assert events.count("nmi.sending") == 1 and "nmi.failed" in events


def test_connection_reset_after_apply_is_outcome_unknown(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["openbmc"])
    inventory = write_inventory(fleet, tmp_path / "inv.toml", timeout=5)
    fleet.set_faults("openbmc-1", reset_after_apply=True)
    result = oob("nmi", "openbmc-1", "-i", str(inventory), "--yes", "--json")
    assert result.code == 6, result.stderr
    assert fleet.bmc("openbmc-1").nmi_count == 1
    assert fleet.bmc("openbmc-1").open_sessions == 0


def test_confirmation_typed_wrong_sends_nothing(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["ilo5"])
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    result = oob("nmi", "ilo5-1", "-i", str(inventory), tty_input="ilo5-2\n")
    assert result.code == 7
    assert "Type the host name (ilo5-1) to confirm" in result.stderr
    assert fleet.bmc("ilo5-1").nmi_count == 0
    no_terminal = oob("nmi", "ilo5-1", "-i", str(inventory))
    assert no_terminal.code == 7
    assert "no terminal" in no_terminal.stderr
    assert fleet.bmc("ilo5-1").nmi_count == 0
    assert fleet.bmc("ilo5-1").open_sessions == 0


def test_confirmation_by_name_and_by_count(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["ilo5"], count=3)
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    one = oob("nmi", "ilo5-1", "-i", str(inventory), tty_input="ilo5-1\n")
    assert one.code == 0, one.stderr
    many = oob("nmi", "ilo5-[2-3]", "-i", str(inventory), tty_input="2\n")
    assert many.code == 0, many.stderr
    assert "Type the number of hosts (2)" in many.stderr
    assert [fleet.bmc(f"ilo5-{i}").nmi_count for i in (1, 2, 3)] == [1, 1, 1]


def test_dry_run_sends_nothing(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["supermicro"])
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    result = oob("nmi", "supermicro-1", "-i", str(inventory), "--dry-run", "--json")
    assert result.code == 0, result.stderr
    record = result.record("supermicro-1")
    assert record["status"] == "dry-run"
    assert record["nmi"] == {"offered": True, "source": "actioninfo", "allowed": record["nmi"]["allowed"]}
    assert fleet.bmc("supermicro-1").nmi_count == 0
    assert fleet.bmc("supermicro-1").open_sessions == 0


def test_powered_off_host_is_refused(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["idrac9"])
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    fleet.set_power("idrac9-1", "Off")
    result = oob("nmi", "idrac9-1", "-i", str(inventory), "--yes", "--json")
    assert result.code == 7
    assert "power is Off" in result.record("idrac9-1")["message"]
    assert fleet.bmc("idrac9-1").nmi_count == 0
    assert fleet.bmc("idrac9-1").open_sessions == 0


def test_several_hosts_worst_exit_code_wins(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["ilo5", "ami", "openbmc"])
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    result = oob("nmi", "@mock", "-i", str(inventory), "--yes", "--json", "--via", "redfish")
    assert result.code == 4
    statuses = {r["host"]: r["status"] for r in result.records}
    assert statuses == {"ilo5-1": "ok", "ami-1": "failed", "openbmc-1": "ok"}
    assert fleet.bmc("ilo5-1").nmi_count == 1 and fleet.bmc("openbmc-1").nmi_count == 1


def test_second_nmi_within_the_window_is_refused_unless_forced(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["openbmc"])
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    first = oob("nmi", "openbmc-1", "-i", str(inventory), "--yes")
    assert first.code == 0
    # the next step, ready to paste: follow the dump from the NMI's time
    assert "oob watch openbmc-1 --since 20" in first.stderr and f"-i {inventory}" in first.stderr
    again = oob("nmi", "openbmc-1", "-i", str(inventory), "--yes", "--json")
    assert again.code == 7
    assert "already sent" in again.record("openbmc-1")["message"]
    assert fleet.bmc("openbmc-1").nmi_count == 1
    forced = oob("nmi", "openbmc-1", "-i", str(inventory), "--yes", "--force")
    assert forced.code == 0
    assert fleet.bmc("openbmc-1").nmi_count == 2


def test_host_locked_by_another_run_is_refused(tmp_path: Path) -> None:
    from oob.errors import SafetyRefusal
    from oob.locks import host_lock

    with host_lock(tmp_path, "web01"), pytest.raises(SafetyRefusal, match="another oob run"):
        with host_lock(tmp_path, "web01"):
            pass
    with host_lock(tmp_path, "web01"):  # released when the holder is done
        pass


def test_two_hosts_on_one_bmc_are_refused(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["ilo5"], count=2)
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    # a copy-paste slip: ilo5-2's entry points at ilo5-1's BMC
    text = inventory.read_text().replace(fleet.bmc("ilo5-2").url, fleet.bmc("ilo5-1").url)
    inventory.write_text(text)
    result = oob("nmi", "ilo5-1", "ilo5-2", "-i", str(inventory), "--yes", "--json")
    assert result.code == 7
    assert all("use the same BMC" in r["message"] for r in result.records)
    assert fleet.bmc("ilo5-1").nmi_count == 0
    check = oob("inventory", "check", "-i", str(inventory))
    assert check.code == 2 and "use the same BMC" in check.stderr


def test_the_question_lists_the_hosts_left_out_and_why(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["openbmc"], count=2)
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    assert oob("nmi", "openbmc-1", "-i", str(inventory), "--yes").code == 0
    # openbmc-1 is left out (NMI minutes ago): said above the question, which names only openbmc-2
    asked = oob("nmi", "openbmc-1", "openbmc-2", "-i", str(inventory), tty_input="openbmc-2\n")
    left_out = asked.stderr.index("openbmc-1: warning: left out: an NMI was already sent")
    assert left_out < asked.stderr.index("Type the host name (openbmc-2) to confirm")
    assert asked.code == 7 and fleet.bmc("openbmc-2").nmi_count == 1 and fleet.bmc("openbmc-1").nmi_count == 1
