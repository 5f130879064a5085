"""The mock fleet serves virtual machines: guests of libvirt's test driver, in its inventory."""

from __future__ import annotations

from pathlib import Path

from mocks.fleet import Fleet
from mocks.libvirt_guests import guest_uuid
from oob.drivers.libvirt import LibvirtDriver
from oob.inventory.loader import load_inventory
from oob.model import PowerState


def test_fleet_inventory_names_its_vms(tmp_path: Path) -> None:
    with Fleet.start(vendors=["openbmc"], workdir=tmp_path / "fleet", vms=2) as fleet:
        path = fleet.write_inventory(tmp_path / "fleet.toml")
        hosts = load_inventory([path]).hosts
        assert [h.name for h in hosts.values() if h.bmc.kind == "libvirt"] == ["vm01", "vm02"]
        assert [vm["uuid"] for vm in fleet.describe()["vms"]] == [guest_uuid("vm01"), guest_uuid("vm02")]  # type: ignore[index]
        vm = hosts["vm02"]
        with LibvirtDriver(vm) as driver:
            assert driver.power_state() is PowerState.ON
            assert driver.info().system_id == guest_uuid("vm02")
            assert driver.send_nmi().action == "nmi"


def test_a_fleet_without_vms_is_unchanged(tmp_path: Path) -> None:
    with Fleet.start(vendors=["openbmc"], workdir=tmp_path / "fleet") as fleet:
        text = fleet.write_inventory(tmp_path / "fleet.toml").read_text()
        assert "libvirt" not in text and "vms" not in fleet.describe()
        assert not (tmp_path / "fleet" / "guests.xml").exists()
