"""The inventory file a fleet writes about itself."""

from __future__ import annotations

import stat
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from mocks.fleet import Fleet
from mocks.inventory_writer import InventoryHost, render_inventory

pytest_plugins = ["mocks.pytest_plugin"]

Start = Callable[..., Fleet]


def test_inventory_with_ca_and_password_file(mock_fleet_factory: Start, tmp_path: Path) -> None:
    fleet = mock_fleet_factory(
        ["ilo5", "idrac9", "openbmc", "supermicro", "xcc", "ami", "dmtf"], password="s3cret"
    )
    path = fleet.write_inventory(tmp_path / "out" / "fleet.toml")
    text = path.read_text()
    assert text.startswith("# written by the oob mock fleet; valid while that process runs\n[defaults]\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = tomllib.loads(text)
    defaults = data["defaults"]["bmc"]
    assert defaults == {
        "username": "admin",
        "password": f"file:{fleet.workdir / 'bmc-password'}",
        "ca_file": str(fleet.ca_file),
        "timeout": 10,
    }
    password_file = fleet.workdir / "bmc-password"
    assert password_file.read_text() == "s3cret" and stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert Path(defaults["ca_file"]).is_absolute() and Path(defaults["ca_file"]).is_file()
    hosts = data["hosts"]
    assert list(hosts) == [b.name for b in fleet.bmcs]
    kinds = {name: host["bmc"]["kind"] for name, host in hosts.items()}
    assert kinds == {"ilo5-1": "ilo", "idrac9-1": "idrac", "openbmc-1": "openbmc", "supermicro-1": "supermicro",
                     "xcc-1": "xcc", "ami-1": "redfish", "dmtf-1": "redfish"}  # fmt: skip
    ilo = hosts["ilo5-1"]
    # the host's own address (the BMC's is in bmc.address), where its probe listens
    assert ilo["address"] == "127.0.1.1" and ilo["groups"] == ["mock", "ilo5"]
    assert ilo["probe"] == fleet.bmc("ilo5-1").probe and ilo["probe"].startswith("ssh:127.0.1.1:")
    assert "dump" not in ilo  # no dump_root: no dump target
    assert ilo["bmc"]["address"] == fleet.bmc("ilo5-1").url
    assert "fingerprint" not in ilo["bmc"]
    assert not list(path.parent.glob(".fleet.toml.*")), "the temporary file of the atomic write is left"


def test_inventory_with_fingerprints_and_env_password(mock_fleet_factory: Start, tmp_path: Path) -> None:
    fleet = mock_fleet_factory(["intel", "cray-ex"])
    data = tomllib.loads(
        fleet.write_inventory(tmp_path / "fp.toml", tls="fingerprint", password="env:BMC_PW").read_text()
    )
    assert data["defaults"]["bmc"] == {"username": "admin", "password": "env:BMC_PW", "timeout": 10}
    for bmc in fleet.bmcs:
        assert data["hosts"][bmc.name]["bmc"]["fingerprint"] == bmc.fingerprint
        assert len(bmc.fingerprint) == 64 and bmc.fingerprint == bmc.fingerprint.lower()


def test_rewriting_replaces_the_file_atomically(mock_fleet_factory: Start, tmp_path: Path) -> None:
    fleet = mock_fleet_factory(["dmtf"])
    path = tmp_path / "inv.toml"
    path.write_text("old")
    path.chmod(0o644)
    fleet.write_inventory(path)
    assert "old" not in path.read_text() and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_bad_options_are_refused(mock_fleet_factory: Start, tmp_path: Path) -> None:
    fleet = mock_fleet_factory(["dmtf"])
    with pytest.raises(ValueError):
        fleet.write_inventory(tmp_path / "x.toml", password="plain")
    with pytest.raises(ValueError):
        fleet.write_inventory(tmp_path / "x.toml", tls="none")  # type: ignore[arg-type]
    assert not (tmp_path / "x.toml").exists()


def test_odd_names_and_values_stay_valid_toml() -> None:
    host = InventoryHost('a "b"', "v", "redfish", "https://127.0.0.1:1", "127.0.0.1", "ab")
    text = render_inventory([host], username='ad"min\\', password_ref="env:X", ca_file=Path("/tmp/é ca.pem"))
    data = tomllib.loads(text)
    assert data["defaults"]["bmc"]["username"] == 'ad"min\\'
    assert data["defaults"]["bmc"]["ca_file"] == "/tmp/é ca.pem"
    assert 'a "b"' in data["hosts"]
