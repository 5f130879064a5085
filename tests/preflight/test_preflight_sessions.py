"""`oob preflight`'s sessions check: open sessions and the timeout, where the BMC's SessionService says."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from tests.conftest import CliResult, write_inventory


def _check(result: CliResult, host: str, name: str) -> dict[str, Any]:
    record = next(r for r in result.records if r.get("event") == "readiness" and r["host"] == host)
    return next(c for c in record["checks"] if c["check"] == name)


def _logins(fleet: Any, name: str, count: int) -> list[Any]:
    from mocks.probe import Probe

    http = requests.Session()
    http.trust_env = False
    http.verify = str(fleet.ca_file)
    probes = [Probe(http, fleet.bmc(name)) for _ in range(count)]
    for probe in probes:
        assert probe.login().status_code == 201
    return probes


def test_sessions_counted_with_oobs_own_and_logged_out(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["idrac9", "supermicro"])
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    others = _logins(fleet, "idrac9-1", 2)
    result = oob("preflight", "all", "-i", str(inventory), "--json")
    idrac, smc = _check(result, "idrac9-1", "sessions"), _check(result, "supermicro-1", "sessions")
    assert idrac["status"] == "ok" and idrac["reason"] == "3 open (oob's included), timeout 1800 s", idrac
    assert idrac["sessions"]["open"] == 3 and "limit" not in idrac["sessions"]
    assert smc["status"] == "ok" and smc["reason"].startswith("1 open (oob's included)"), smc
    assert smc["reason"].endswith("of the 16 a supermicro BMC allows") and smc["sessions"]["limit"] == 16
    # no session beyond the one the check opened, and that one deleted
    assert fleet.bmc("idrac9-1").open_sessions == 2 and fleet.bmc("supermicro-1").open_sessions == 0
    for probe in others:
        probe.logout()


def test_sessions_warn_at_the_vendor_limit_and_fail_when_none_is_free(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["supermicro", "idrac9"])
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    _logins(fleet, "supermicro-1", 15)
    fleet.set_faults("idrac9-1", session_limit=1)
    _logins(fleet, "idrac9-1", 1)
    result = oob("preflight", "all", "-i", str(inventory), "--json", "--via", "redfish")
    smc = _check(result, "supermicro-1", "sessions")
    assert smc["status"] == "warn" and "16 open (oob's included)" in smc["reason"], smc
    assert "at the 16 a supermicro BMC allows" in smc["reason"]
    idrac = _check(result, "idrac9-1", "sessions")
    # the BMC's own session_limit refuses oob's login: the auth check fails, and this one says why
    assert idrac["status"] == "fail" and "no session free" in idrac["reason"], idrac
    assert _check(result, "idrac9-1", "auth")["status"] == "fail"
    assert fleet.bmc("supermicro-1").open_sessions == 15 and fleet.bmc("idrac9-1").open_sessions == 1
