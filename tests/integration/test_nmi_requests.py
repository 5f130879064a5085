"""Requests per NMI on the wire (counted by the mock BMC): one session from plan to send,
and the discovery cache making a warm NMI a login, one read, the POST and the logout."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult, write_inventory

#: cold: login (at the specification's URI, the service root unread), Systems, the system,
#: POST, logout (ActionInfo: one more)
COLD = {"idrac9": 5, "ilo5": 5, "openbmc": 6}
#: warm: login, the system (power state and the Reset target), POST, logout
WARM = 4


@pytest.mark.parametrize("vendor", sorted(COLD))
def test_cold_then_warm_nmi_request_counts(
    vendor: str,
    fleet_factory: Callable[..., Any],
    oob: Callable[..., CliResult],
    tmp_path: Path,
    discovery_cache: Path,
) -> None:
    fleet = fleet_factory([vendor])
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    [bmc] = fleet.bmcs
    name = f"{vendor}-1"

    cold = oob("nmi", name, "-i", str(inventory), "--yes", "--json")
    assert cold.code == 0, cold.stderr
    cold_requests = bmc.requests_redfish
    assert (cold_requests, bmc.nmi_count, bmc.open_sessions) == (COLD[vendor], 1, 0)
    assert len(list((discovery_cache / "redfish").glob("*.json"))) == 1

    warm = oob("nmi", name, "-i", str(inventory), "--yes", "--json", "--allow-repeat")
    assert warm.code == 0, warm.stderr
    assert (bmc.requests_redfish - cold_requests, bmc.nmi_count, bmc.open_sessions) == (WARM, 2, 0)

    before = bmc.requests_redfish
    refreshed = oob("nmi", name, "-i", str(inventory), "--yes", "--json", "--allow-repeat", "--refresh")
    assert refreshed.code == 0, refreshed.stderr
    assert (bmc.requests_redfish - before, bmc.nmi_count) == (COLD[vendor], 3)


def test_v_prints_the_request_count_per_host(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["idrac9"])
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    result = oob("nmi", "idrac9-1", "-i", str(inventory), "--yes", "-v")
    assert result.code == 0, result.stderr
    assert "idrac9-1: 5 requests to" in result.stderr
    assert "(discovery read from the BMC)" in result.stderr


def _after_one_nmi(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path, cache: Path
) -> tuple[Path, Any, Path]:
    """An iDRAC that got one NMI: the inventory, the mock BMC, the cache entry oob wrote."""
    fleet = fleet_factory(["idrac9"])
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    [bmc] = fleet.bmcs
    assert oob("nmi", "idrac9-1", "-i", str(inventory), "--yes").code == 0
    [entry] = (cache / "redfish").glob("*.json")
    return inventory, bmc, entry


def test_a_stale_cache_is_dropped_and_the_nmi_still_goes_once(
    fleet_factory: Callable[..., Any],
    oob: Callable[..., CliResult],
    tmp_path: Path,
    discovery_cache: Path,
) -> None:
    inventory, bmc, entry = _after_one_nmi(fleet_factory, oob, tmp_path, discovery_cache)
    data = json.loads(entry.read_text())
    data["system_uri"] = "/redfish/v1/Systems/Gone"  # the firmware moved the system
    entry.write_text(json.dumps(data))

    result = oob("nmi", "idrac9-1", "-i", str(inventory), "--yes", "--json", "--allow-repeat")
    assert result.code == 0, result.stderr
    assert bmc.nmi_count == 2
    assert json.loads(entry.read_text())["system_uri"] != "/redfish/v1/Systems/Gone"


@pytest.mark.parametrize(
    "poison",
    [
        {"system_uri": "https://198.51.100.9/redfish/v1/Systems/1"},  # another origin
        {"login_uri": "//198.51.100.9/redfish/v1/SessionService/Sessions"},
        {"version": 99},
        {"certificate": "00" * 32},  # learnt behind another certificate
    ],
)
def test_a_cache_entry_oob_would_not_write_is_not_followed(
    poison: dict[str, Any],
    fleet_factory: Callable[..., Any],
    oob: Callable[..., CliResult],
    tmp_path: Path,
    discovery_cache: Path,
) -> None:
    inventory, bmc, entry = _after_one_nmi(fleet_factory, oob, tmp_path, discovery_cache)
    entry.write_text(json.dumps({**json.loads(entry.read_text()), **poison}))
    before = bmc.requests_redfish

    result = oob("nmi", "idrac9-1", "-i", str(inventory), "--yes", "--json", "--allow-repeat")
    assert result.code == 0, result.stderr
    assert bmc.nmi_count == 2
    # discovered afresh (the root read again): more than a warm NMI's requests
    assert bmc.requests_redfish - before > WARM


def test_http_basic_makes_a_warm_nmi_two_requests(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["idrac9"])
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    inventory.write_text(inventory.read_text().replace("[defaults]\n", '[defaults]\nbmc.auth = "basic"\n', 1))
    [bmc] = fleet.bmcs

    cold = oob("nmi", "idrac9-1", "-i", str(inventory), "--yes", "--json")
    assert cold.code == 0, cold.stderr
    # Systems (the credentials checked), the system, POST: no service root, no login, no logout
    assert (bmc.requests_redfish, bmc.nmi_count, bmc.open_sessions) == (3, 1, 0)
    warm = oob("nmi", "idrac9-1", "-i", str(inventory), "--yes", "--json", "--allow-repeat")
    assert warm.code == 0, warm.stderr
    assert (bmc.requests_redfish - 3, bmc.nmi_count) == (2, 2)  # the system, POST

    # a wrong password is one refused read, exit 3, and nothing sent
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    wrong.chmod(0o600)
    text = inventory.read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(str(fleet.password_file), str(wrong)))
    bad.chmod(0o600)
    refused = oob("nmi", "idrac9-1", "-i", str(bad), "--yes", "--json", "--allow-repeat")
    assert refused.code == 3, refused.stderr
    assert "401" in refused.stdout and bmc.nmi_count == 2
