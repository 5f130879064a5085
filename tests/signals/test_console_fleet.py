"""The serial console the way `oob crash` will use it: hosts from the fleet's own inventory, the
password resolved as the IPMI driver resolves it, the capture opened before the NMI and the NMI
sent by oob's IPMI driver while the console session is open on the same BMC."""

from __future__ import annotations

from pathlib import Path

from mocks.fleet import Fleet
from oob.drivers.factory import make_driver, resolve_password
from oob.inventory.loader import load_inventory
from oob.signals.console import ConsoleCapture, MilestoneKind
from tests.conftest import write_inventory
from tests.ipmi.conftest import wait_until


def test_console_and_nmi_over_ipmi_side_by_side(tmp_path: Path) -> None:
    with Fleet.start(
        vendors=["ipmi", "ami"],
        ipmi=True,
        hung=True,
        dump_root=tmp_path / "crash",
        scale=0.02,
        workdir=tmp_path,
    ) as fleet:
        inventory = load_inventory([write_inventory(fleet, tmp_path / "inv.toml")])
        hosts = list(inventory.hosts.values())
        assert {h.name for h in hosts} == {"ipmi-1", "ami-1"}
        captures = []
        for host in hosts:
            capture = ConsoleCapture(host, resolve_password(host), directory=tmp_path / "consoles")
            assert capture.start(), capture.warning
            captures.append(capture)
            with make_driver(host, "ipmi", connect_attempts=1) as driver:
                driver.send_nmi()
        for capture in captures:
            assert capture.wait_for(MilestoneKind.KDUMP_SAVED, 15) is not None, capture.result().last_lines
        results = [capture.stop() for capture in captures]
        for host, result in zip(hosts, results, strict=True):
            bmc = fleet.bmc(host.name)
            assert bmc.nmi_count_ipmi == 1  # one NMI each, the console did not disturb it
            assert result.problem is None and result.milestone(MilestoneKind.PANIC) is not None
            assert result.path is not None and result.path.name.startswith(f"{host.name}-")
            assert bmc.ipmi is not None
            ipmi = bmc.ipmi
            assert wait_until(lambda ipmi=ipmi: not ipmi.sessions and not ipmi.sol.active)  # type: ignore[misc]
