"""``oob nmi``, ``oob power``, ``oob bmc info`` for ESXi guests, as real processes, against the
fake ESXi tools on a real sshd reached through the Host alias ``esxi01`` of $OOB_SSH_CONFIG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.esxi.conftest import EsxiHost, esxi_inventory
from tests.esxi.fake_esxi import vm


def audit(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_one_nmi_then_the_repeat_guard(esxi: EsxiHost, oob: Any, tmp_path: Path, audit_path: Path) -> None:
    inv = esxi_inventory(tmp_path / "inv.toml", {"web01": "web01"})
    first = oob("nmi", "web01", "-i", str(inv), "-y", "--json")
    assert first.code == 0, first.stderr
    record = first.record("web01")
    assert (record["status"], record["via"], record["exit_status"]) == ("ok", "esxi", 0)
    assert "NMI sent via esxi (exit status 0)" in first.stderr
    assert esxi.fake.nmis() == [vm("web01", 1)["wid"]]
    events = [(r["event"], r.get("machine")) for r in audit(audit_path) if r.get("host") == "web01"]
    assert events == [("nmi.sending", "esxi01/web01"), ("nmi.sent", "esxi01/web01")]

    again = oob("nmi", "web01", "-i", str(inv), "-y", "--json")
    assert again.code == 7 and "already sent" in again.record("web01")["message"]
    assert len(esxi.fake.nmis()) == 1


def test_a_dropped_connection_is_outcome_unknown_and_never_resent(
    esxi: EsxiHost, oob: Any, tmp_path: Path, audit_path: Path
) -> None:
    esxi.fake.reset(nmi_then="drop")
    inv = esxi_inventory(tmp_path / "inv.toml", {"web01": "web01"})
    result = oob("nmi", "web01", "-i", str(inv), "-y", "--json")
    assert result.code == 6, result.stderr
    assert result.record("web01")["error"] == "outcome_unknown"
    assert "NOT resending" in result.stderr
    assert len(esxi.fake.nmis()) == 1
    assert [r["event"] for r in audit(audit_path) if r.get("host") == "web01"] == [
        "nmi.sending",
        "nmi.failed",
    ]
    # the host may be crashing: the next run is refused too, nothing is sent
    again = oob("nmi", "web01", "-i", str(inv), "-y", "--json")
    assert again.code == 7 and len(esxi.fake.nmis()) == 1


def test_refusals_off_missing_and_twice_named(esxi: EsxiHost, oob: Any, tmp_path: Path) -> None:
    esxi.fake.reset([vm("web01", 1, power="off"), vm("db01", 2, directory="a"), vm("db01", 3, directory="b")])
    inv = esxi_inventory(tmp_path / "inv.toml", {"web01": "web01", "db01": "db01", "app01": "app01"})
    result = oob("nmi", "web01,db01,app01", "-i", str(inv), "-y", "--json")
    assert result.code == 7, result.stderr
    assert "power is Off" in result.record("web01")["message"]
    twice = result.record("db01")["message"]
    assert "2 VMs on ESXi host esxi01 are named 'db01'" in twice and "a/a.vmx" in twice and "b/b.vmx" in twice
    assert "no VM named 'app01'" in result.record("app01")["message"]
    assert result.record("app01")["exit_code"] == 2
    assert esxi.fake.nmis() == []


def test_power_status_an_action_and_bmc_info(esxi: EsxiHost, oob: Any, tmp_path: Path) -> None:
    inv = esxi_inventory(tmp_path / "inv.toml", {"web01": "web01"})
    status = oob("power", "web01", "status", "-i", str(inv), "--json")
    assert status.code == 0 and status.record("web01")["power"] == "On", status.stderr
    off = oob("power", "web01", "off", "-i", str(inv), "-y", "--json")
    assert off.code == 0, off.stderr
    assert off.record("web01")["sent"] == ["vim-cmd vmsvc/power.off 1"]
    assert esxi.fake.power_log() == ["off 1"]
    info = oob("bmc", "info", "web01", "-i", str(inv), "--json")
    assert info.code == 0, info.stderr
    record = info.record("web01")
    assert (record["via"], record["vendor"], record["power"]) == ("esxi", "VMware", "Off")
    assert record["firmware"] == "VMware ESXi 8.0.2 build-22380479"
