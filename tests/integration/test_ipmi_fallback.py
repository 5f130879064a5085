"""`oob` over IPMI against the mock fleet, and the Redfish -> IPMI fallback, over real sockets.

The fleet serves both protocols for one simulated host per BMC (``ipmi=True``), so a count
on the BMC proves which protocol delivered the NMI and that nothing was delivered twice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mocks.flavours import FLAVOURS
from mocks.fleet import Fleet
from tests.conftest import CliResult, write_inventory

pytest_plugins = ["mocks.pytest_plugin"]

Start = Callable[..., Fleet]
Oob = Callable[..., CliResult]

REDFISH_NMI_NOT_SUPPORTED = "redfish: NMI not supported by this BMC"


def _methods(inventory: Path, host: str, methods: list[str]) -> None:
    """Give one host of a written inventory its own ``bmc.methods``."""
    text = inventory.read_text()
    header = f"[hosts.{host}]\n"
    assert header in text
    inventory.write_text(text.replace(header, f"{header}bmc.methods = {json.dumps(methods)}\n"))
    inventory.chmod(0o600)


def _events(audit_path: Path) -> list[str]:
    return [json.loads(line)["event"] for line in audit_path.read_text().splitlines()]


def test_nmi_via_ipmi_reaches_every_flavour_exactly_once(
    mock_fleet_factory: Start, oob: Oob, tmp_path: Path
) -> None:
    fleet = mock_fleet_factory(sorted(FLAVOURS), ipmi=True)
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    # oob's default parallelism: every host's IPMI session at once in one process
    result = oob("nmi", "all", "-i", str(inventory), "--via", "ipmi", "--yes", "--json")
    assert result.code == 0, result.stderr
    for bmc in fleet.bmcs:
        record = result.record(bmc.name)
        assert (record["status"], record["via"], record["completion_code"]) == ("ok", "ipmi", 0), record
        assert "fallback_reason" not in record
        assert (bmc.nmi_count, bmc.nmi_count_ipmi, bmc.nmi_count_redfish) == (1, 1, 0), bmc.name
        assert bmc.ipmi is not None and bmc.ipmi.chassis_controls == {0x04: 1}, bmc.name  # one on the wire
        assert not bmc.ipmi.sessions, f"{bmc.name}: IPMI session left open"


def test_ami_falls_back_to_ipmi_and_says_why(mock_fleet_factory: Start, oob: Oob, tmp_path: Path) -> None:
    fleet = mock_fleet_factory(["ami"], count=2, ipmi=True)
    inventory = write_inventory(fleet, tmp_path / "inv.toml")

    as_json = oob("nmi", "ami-1", "-i", str(inventory), "--yes", "--json")
    assert as_json.code == 0, as_json.stderr
    record = as_json.record("ami-1")
    assert (record["status"], record["via"]) == ("ok", "ipmi")
    assert record["fallback_reason"].startswith(REDFISH_NMI_NOT_SUPPORTED)
    assert "ipmi" not in record["fallback_reason"]  # only why Redfish was left, not IPMI's own result
    ami = fleet.bmc("ami-1")
    assert (ami.nmi_count, ami.nmi_count_ipmi, ami.nmi_count_redfish) == (1, 1, 0)
    assert ami.open_sessions == 0  # the Redfish session of the planning was closed

    human = oob("nmi", "ami-2", "-i", str(inventory), "--yes")
    assert human.code == 0, human.stderr
    assert f"ami-2: warning: falling back to ipmi: {REDFISH_NMI_NOT_SUPPORTED}" in human.stderr
    assert "NMI sent via ipmi (completion code 0x00)" in human.stderr
    assert fleet.bmc("ami-2").nmi_count_ipmi == 1


def test_ipmi_only_flavour_takes_nmi_power_and_info(
    mock_fleet_factory: Start, oob: Oob, tmp_path: Path, audit_path: Path
) -> None:
    fleet = mock_fleet_factory(["ipmi"])  # no ipmi=True: this flavour always answers IPMI, and only IPMI
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    bmc = fleet.bmc("ipmi-1")
    target = ("ipmi-1", "-i", str(inventory))

    info = oob("bmc", "info", *target, "--json")
    assert info.code == 0, info.stderr
    card = info.record("ipmi-1")
    assert (card["via"], card["power"], card["nmi"]["offered"]) == ("ipmi", "On", True)
    assert card["manager"].startswith("IPMI 2.0 BMC")

    def power(action: str) -> dict[str, Any]:
        result = oob("power", *target, action, "--yes", "--json")
        assert result.code == 0, result.stderr
        record = result.record("ipmi-1")
        assert record["via"] == "ipmi"
        return record

    assert power("status")["power"] == "On"
    power("off")
    assert bmc.power == "Off" and power("status")["power"] == "Off"
    power("on")
    assert bmc.power == "On" and power("status")["power"] == "On"

    nmi = oob("nmi", *target, "--yes", "--json")
    assert nmi.code == 0, nmi.stderr
    assert (nmi.record("ipmi-1")["via"], bmc.nmi_count) == ("ipmi", 1)
    assert _events(audit_path).count("nmi.sent") == 1
    assert bmc.ipmi is not None and not bmc.ipmi.sessions


def test_ipmi_timeout_after_the_nmi_is_exit_6_never_resent_nor_sent_by_redfish(
    mock_fleet_factory: Start, oob: Oob, tmp_path: Path, audit_path: Path
) -> None:
    fleet = mock_fleet_factory(["idrac9"], ipmi=True)
    inventory = write_inventory(fleet, tmp_path / "inv.toml", timeout=2)
    # IPMI first: if oob wrongly fell back after the timeout, Redfish would deliver a second NMI
    _methods(inventory, "idrac9-1", ["ipmi", "redfish"])
    fleet.set_faults("idrac9-1", ipmi_drop_after_apply=True)

    result = oob("nmi", "idrac9-1", "-i", str(inventory), "--yes", "--json")
    assert result.code == 6, result.stderr
    record = result.record("idrac9-1")
    assert (record["status"], record["via"], record["error"]) == ("unknown", "ipmi", "outcome_unknown")
    assert "NOT resending" in result.stderr
    bmc = fleet.bmc("idrac9-1")
    assert (bmc.nmi_count, bmc.nmi_count_ipmi, bmc.nmi_count_redfish) == (1, 1, 0)
    assert bmc.ipmi is not None and bmc.ipmi.chassis_controls == {0x04: 1}
    assert bmc.requests_redfish == 0  # Redfish was never even asked
    events = _events(audit_path)
    assert events.count("nmi.sending") == 1 and "nmi.failed" in events


def test_ipmi_is_not_tried_where_the_inventory_does_not_say_the_bmc_has_it(
    mock_fleet_factory: Start, oob: Oob, tmp_path: Path
) -> None:
    # No IPMI in this fleet and none in the inventory (no bmc.ipmi_port, no bmc.methods): a
    # listener on 127.0.0.1:623 sees nothing, and the answer is Redfish's alone, at once
    import socket

    fleet = mock_fleet_factory(["ami"])
    inventory = write_inventory(fleet, tmp_path / "inv.toml", timeout=2)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 623))
        listener.setblocking(False)
        result = oob("nmi", "ami-1", "-i", str(inventory), "--yes", "--json")
        try:
            arrived = listener.recv(4096)
        except BlockingIOError:
            arrived = b""
    assert arrived == b"", "oob tried IPMI on port 623 although the inventory never mentioned it"
    record = result.record("ami-1")
    assert (record["error"], record["exit_code"]) == ("unsupported", 4), record
    assert record["message"].startswith("NMI not supported by this BMC") and "ipmi" not in record["message"]


def test_without_ipmi_both_reasons_are_given_and_ilo_gets_its_hint(
    mock_fleet_factory: Start, oob: Oob, tmp_path: Path
) -> None:
    # The inventory says both methods, but this fleet has no IPMI: IPMI goes to port 623,
    # where nothing answers.  Both hosts in one run: each waits out oob's IPMI login attempts.
    fleet = mock_fleet_factory(["ami", "ilo5"])
    fleet.set_faults("ilo5-1", nmi_not_offered=True)
    inventory = write_inventory(fleet, tmp_path / "inv.toml", timeout=2)
    text = inventory.read_text().replace("[defaults]\n", '[defaults]\nbmc.methods = ["redfish", "ipmi"]\n', 1)
    inventory.write_text(text)

    result = oob("nmi", "ami-1", "ilo5-1", "-i", str(inventory), "--yes", "--json")
    assert result.code == 4, result.stderr
    for name in ("ami-1", "ilo5-1"):
        record = result.record(name)
        assert (record["status"], record["error"], record["exit_code"]) == ("failed", "unsupported", 4)
        message = record["message"]
        assert message.startswith(REDFISH_NMI_NOT_SUPPORTED), message
        assert re.search(r"; ipmi: no answer from 127\.0\.0\.1:623 to IPMI session setup", message), message
        assert record["fallback_reason"].startswith(REDFISH_NMI_NOT_SUPPORTED)
        assert fleet.bmc(name).nmi_count == 0 and fleet.bmc(name).open_sessions == 0
    assert "IPMI over LAN disabled" not in result.record("ami-1")["message"]
    ilo = result.record("ilo5-1")["message"]
    assert ilo.count("HPE iLO ships with IPMI over LAN disabled") == 1, ilo


def test_always3_cipher_mode_is_served_and_oob_copes(
    mock_fleet_factory: Start, oob: Oob, tmp_path: Path
) -> None:
    strict = mock_fleet_factory(["xcc"], ipmi=True)
    always3 = mock_fleet_factory(["xcc"], ipmi=True, ipmi_cipher_mode="always3")
    for fleet in (strict, always3):
        inventory = write_inventory(fleet, tmp_path / f"{fleet.ipmi_cipher_mode}.toml")
        result = oob("nmi", "xcc-1", "-i", str(inventory), "--via", "ipmi", "--yes", "--json", "--force")
        assert result.code == 0, result.stderr
        assert fleet.bmc("xcc-1").nmi_count_ipmi == 1
    strict_bmc, always3_bmc = strict.bmc("xcc-1").ipmi, always3.bmc("xcc-1").ipmi
    assert strict_bmc is not None and always3_bmc is not None
    # oob proposes suite 17 first: the strict BMC refuses it, the always3 one answers suite 3
    assert strict_bmc.cipher_refusals >= 1 and always3_bmc.cipher_refusals == 0
