"""``oob bmc log`` as a real process against the mock fleet: JSON and human output, the window
options, bad input in one line with exit 2, control characters from the BMC escaped."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mocks.bmc_logs import event_log_for
from oob.errors import UsageError
from oob.runbook.bmclog import parse_when
from tests.conftest import CliResult, write_inventory


def _records(result: CliResult, event: str | None) -> list[dict[str, Any]]:
    return [r for r in result.records if r.get("event") == event]


def test_bmc_log_json_and_human(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["openbmc", "intel"])
    inventory = str(write_inventory(fleet, tmp_path / "inv.toml"))
    log = event_log_for(fleet.bmc("openbmc-1").host)
    log.add("nmi")
    log.inject("machine_check")
    result = oob("bmc", "log", "all", "-i", inventory, "--since", "10m", "--json")
    assert result.code == 0, result.stderr
    outcomes = {r["host"]: r for r in _records(result, None) if r.get("action") == "bmc.log"}
    assert set(outcomes) == {"openbmc-1", "intel-1"}
    # the bmc_log_entries event of each host: its summary, on stderr beside the JSON results
    assert "openbmc-1: info: 2 entries in the window" in result.stderr
    assert "intel-1: info: the BMC offers no event log" in result.stderr
    openbmc = outcomes["openbmc-1"]
    assert openbmc["status"] == "ok" and openbmc["via"] == "redfish"
    assert openbmc["nmi_entries"] == 1 and openbmc["hardware_errors"] == 1
    assert [e["kind"] for e in openbmc["entries"]] == ["nmi", "machine_check"]
    assert openbmc["entries"][0]["message_id"] == "OpenBMC.0.1.NMIDiagnosticInterrupt"
    assert openbmc["outside"] > 0 and openbmc["kept"] == 2
    intel = outcomes["intel-1"]
    assert intel["status"] == "ok" and intel["kept"] == 0
    assert [s["status"] for s in intel["sources"]] == ["not_offered"]

    human = oob("bmc", "log", "openbmc-1", "-i", inventory, "--since", "10m")
    assert human.code == 0, human.stderr
    assert "NMI logged at" in human.stdout
    assert "* " in human.stdout and "NMI Diagnostic Interrupt." in human.stdout
    assert "! " in human.stdout and "CPU Error Occurred" in human.stdout

    early = oob("bmc", "log", "openbmc-1", "-i", inventory, "--since", "30d", "--until", "1d", "--json")
    assert early.code == 0, early.stderr
    (outcome,) = [r for r in _records(early, None) if r.get("action") == "bmc.log"]
    assert outcome["nmi_entries"] == 0 and outcome["kept"] > 0


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--since", "yesterday"), "--since 'yesterday': expected an ISO 8601 time"),
        (("--until", "2026-13-01"), "--until '2026-13-01': expected"),
        (("--since", "1h", "--until", "2h"), "--until is before --since"),
    ],
)
def test_bad_times_are_one_line_and_exit_2(
    oob: Callable[..., CliResult], tmp_path: Path, args: tuple[str, ...], said: str
) -> None:
    result = oob("bmc", "log", "web1", "-i", str(tmp_path / "none.toml"), *args)
    assert result.code == 2
    assert said in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_parse_when() -> None:
    now = dt.datetime(2026, 11, 30, 5, tzinfo=dt.UTC)
    assert parse_when("30m", "--since", now=now) == now - dt.timedelta(minutes=30)
    assert parse_when("2026-11-30T04:00:00Z", "--since") == now - dt.timedelta(hours=1)
    assert parse_when("2026-11-30T06:00:00+01:00", "--since") == now
    assert parse_when("2026-11-30T05:00:00", "--since").tzinfo is not None
    with pytest.raises(UsageError):
        parse_when("soon", "--since")


def test_a_redfish_service_without_logs_falls_back_to_the_sel(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    """Intel's capture links no LogServices; with IPMI in the inventory the SEL is read."""
    fleet = fleet_factory(["intel", "ipmi"], ipmi=True)
    inventory = str(write_inventory(fleet, tmp_path / "inv.toml"))
    for name in ("intel-1", "ipmi-1"):
        event_log_for(fleet.bmc(name).host).add("nmi")
    result = oob("bmc", "log", "all", "-i", inventory, "--since", "10m", "--json")
    assert result.code == 0, result.stderr
    outcomes = {r["host"]: r for r in _records(result, None) if r.get("action") == "bmc.log"}
    intel, ipmi = outcomes["intel-1"], outcomes["ipmi-1"]
    assert (intel["via"], intel["fallback_reason"]) == ("ipmi", "redfish offers no event log")
    assert intel["nmi_entries"] == 1 and intel["sources"][0]["name"] == "SEL"
    assert ipmi["via"] == "ipmi" and ipmi["nmi_entries"] == 1 and "fallback_reason" not in ipmi
    assert fleet.bmc("intel-1").open_sessions == 0
