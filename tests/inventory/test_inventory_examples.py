"""The example inventories users copy must load and mean what their comments say."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

import pytest

from oob.inventory import load_inventory
from oob.inventory.ansible import VARIABLES
from oob.inventory.schema import KEYS
from oob.model import SecretRef

from .conftest import EXAMPLES

TOML = EXAMPLES / "example.toml"
YAML = EXAMPLES / "example.yaml"
ANSIBLE = EXAMPLES / "ansible-hosts.yaml"
ALL = [TOML, YAML, ANSIBLE]


def test_example_toml():
    inv = load_inventory([TOML])
    assert list(inv.hosts) == ["web01", "web02", "db01", "lab01", "lab02", "vm01"]
    web01, web02, db01, lab01, lab02, vm01 = inv.hosts.values()

    assert (web01.address, web01.aliases, web01.groups) == (
        "192.0.2.11",
        ("web01.example.com",),
        ("web", "frontend"),
    )
    assert (web01.bmc.kind, web01.bmc.address, web01.bmc.username) == ("ilo", "https://192.0.2.111", "admin")
    assert web01.bmc.password == SecretRef("env", "OOB_BMC_PASSWORD")
    assert web01.bmc.ca_file == str(EXAMPLES / "certs" / "web-ca.pem")
    assert (web01.bmc.verify, web01.bmc.methods, web01.bmc.ipmi_port, web01.bmc.timeout) == (
        True,
        ("redfish", "ipmi"),
        623,
        15.0,
    )
    assert (web01.dump.target, web01.dump.layout) == ("ssh://root@dumpsrv.example.com/var/crash", "auto")
    assert web02.bmc.username == "oob-operator"

    assert (db01.bmc.kind, db01.bmc.address, db01.bmc.system) == (
        "idrac",
        "bmc-db01.example.com",
        "System.Embedded.1",
    )
    assert db01.dump.target == "file:///mnt/crash"

    assert lab01.bmc.password == SecretRef("file", str(EXAMPLES / "secrets" / "lab-bmc.pw"))
    assert lab01.bmc.fingerprint is not None and re.fullmatch(r"[0-9a-f]{64}", lab01.bmc.fingerprint)
    assert (lab01.bmc.timeout, lab01.dump.target, lab01.dump.layout) == (
        30.0,
        "ssh://kdump@198.51.100.5:2222/srv/crash",
        "rhel",
    )
    assert (lab02.bmc.kind, lab02.bmc.effective_methods, lab02.bmc.ipmi_port) == ("ipmi", ("ipmi",), 6230)
    assert (vm01.bmc.kind, vm01.bmc.effective_methods, vm01.bmc.domain) == ("libvirt", ("libvirt",), "vm01")
    assert vm01.bmc.machine == "qemu+ssh://root@kvm07.example.com/system#vm01"

    assert inv.groups == {
        "web": ("web01", "web02"),
        "db": ("db01",),
        "lab": ("lab01", "lab02"),
        "frontend": ("web01", "web02"),
    }


def test_example_yaml():
    inv = load_inventory([YAML])
    assert list(inv.hosts) == ["web03", "stor01", "stor02"]
    web03, stor01, stor02 = inv.hosts.values()
    assert (web03.bmc.kind, web03.bmc.ca_file) == ("ilo", str(EXAMPLES / "certs" / "web-ca.pem"))
    assert stor01.bmc.password == SecretRef("file", str(EXAMPLES / "secrets" / "stor01.pw"))
    assert (stor01.bmc.kind, stor01.bmc.methods, stor01.dump.target, stor01.dump.layout) == (
        "supermicro",
        ("ipmi", "redfish"),
        "file:///mnt/crash",
        "suse",
    )
    assert (stor02.bmc.verify, stor02.bmc.timeout, stor02.bmc.password) == (
        False,
        30.0,
        SecretRef("env", "OOB_BMC_PASSWORD"),
    )


def test_example_ansible():
    inv = load_inventory([ANSIBLE])
    assert list(inv.hosts) == [
        "web01.example.com",
        "web02.example.com",
        "web03.example.com",
        "db-a.example.com",
        "db-b.example.com",
        "db-c.example.com",
        "legacy01.example.com",
    ]
    web02 = inv.hosts["web02.example.com"]
    assert (web02.address, web02.groups, web02.bmc.kind, web02.bmc.address) == (
        "192.0.2.12",
        ("datacenter1", "web"),
        "ilo",
        "https://192.0.2.112",
    )
    assert (web02.bmc.timeout, web02.bmc.username) == (20.0, "admin")
    db_c = inv.hosts["db-c.example.com"]
    assert (db_c.bmc.kind, db_c.bmc.system, db_c.dump.target, db_c.dump.layout) == (
        "idrac",
        "System.Embedded.1",
        "file:///mnt/crash",
        "rhel",
    )
    legacy = inv.hosts["legacy01.example.com"]
    assert (legacy.bmc.effective_methods, legacy.aliases, legacy.bmc.timeout) == (
        ("ipmi",),
        ("legacy01",),
        15.0,
    )
    assert inv.groups["datacenter1"] == tuple(name for name in inv.hosts if name.startswith(("web", "db")))
    assert [host.name for host in inv.select(["@ipmi_only", "db-[a:b]*"])] == [
        "legacy01.example.com",
        "db-a.example.com",
        "db-b.example.com",
    ]


def test_the_examples_load_together():
    inv = load_inventory(ALL)
    assert len(inv.hosts) == 6 + 3 + 7
    assert inv.files == tuple(str(path) for path in ALL)


def test_example_toml_documents_every_key():
    text = TOML.read_text()
    for key in KEYS:
        assert re.search(rf"^#?\s*{re.escape(key)}\b", text, re.MULTILINE), f"{key} is not documented"


def test_ansible_example_documents_every_variable():
    text = ANSIBLE.read_text()
    for variable in VARIABLES:
        assert variable in text, f"{variable} is not documented"


@pytest.mark.parametrize("path", ALL, ids=lambda path: path.name)
def test_examples_use_documentation_addresses_and_references_only(path):
    documentation = [
        ipaddress.ip_network(net) for net in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
    ]

    def allowed(name: str) -> bool:
        try:
            return any(ipaddress.ip_address(name) in net for net in documentation)
        except ValueError:
            return "." not in name or name.endswith(".example.com")

    for address in re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", path.read_text()):
        assert allowed(address), address
    for host in load_inventory([path]).hosts.values():
        names = [host.name, host.address or "", *host.aliases, host.bmc.hostname]
        names.append(urlsplit(host.dump.target or "").hostname or "")
        assert all(allowed(name) for name in names if name), names
        assert host.bmc.password is not None and host.bmc.password.scheme in ("env", "file")
