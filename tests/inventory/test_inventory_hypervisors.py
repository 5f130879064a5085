"""Virtual machines in the inventory: ``bmc.kind`` libvirt/esxi with ``bmc.domain``, and the
machine key that locks, the repeat guard and the duplicate check use."""

from __future__ import annotations

import pytest

from oob.inventory.checks import shared_bmcs
from oob.model import BmcConfig, Host


def test_a_libvirt_guest_is_read_with_its_method(load):
    inv = load(
        "a.toml",
        """
        [hosts.vm01]
        bmc.kind = "libvirt"
        bmc.address = "qemu+ssh://root@kvm07.example.com/system?keyfile=/root/.ssh/id_kvm"
        bmc.domain = "vm01"
        """,
    )
    bmc = inv.hosts["vm01"].bmc
    assert (bmc.kind, bmc.effective_methods, bmc.domain, bmc.is_hypervisor) == (
        "libvirt",
        ("libvirt",),
        "vm01",
        True,
    )


@pytest.mark.parametrize(
    "address", ["qemu:///system", "qemu:///session", "xen+ssh://root@192.0.2.7/system", "test:///default"]
)
def test_good_libvirt_uris(load, address):
    inv = load("a.toml", f'[hosts.h]\nbmc.kind = "libvirt"\nbmc.address = "{address}"\nbmc.domain = "g"\n')
    assert inv.hosts["h"].bmc.address == address


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("https://192.0.2.1", "the scheme must be one of qemu, xen, test"),
        ("qemu+ssh://root:Hunter2@kvm07/system", "do not put a password in the libvirt URI"),
        # libvirt's ssh transport runs the program named by ?command= (and ?netcat= on the far side)
        ("qemu+ssh://root@kvm07/system?command=/tmp/evil", "does not pass the URI parameter 'command'"),
        ("qemu+ssh://root@kvm07/system?netcat=/tmp/evil", "does not pass the URI parameter 'netcat'"),
        ("qemu+ssh://root@kvm07/system?socket=/tmp/s", "a socket path only on a local URI"),
    ],
)
def test_bad_libvirt_uris(load_error, address, problem):
    _, message = load_error(
        "a.toml", f'[hosts.h]\nbmc.kind = "libvirt"\nbmc.address = "{address}"\nbmc.domain = "g"\n'
    )
    assert problem in message
    assert "Hunter2" not in message


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("esxi07.example.com", None),
        ("ssh://root@esxi07.example.com:2222", None),
        ("https://esxi07.example.com", "oob reaches ESXi over SSH only"),
        ("ssh://root:pw@esxi07.example.com", "do not put a password in the ESXi address"),
        ("ssh://root@esxi07.example.com/vmfs", "no path"),
    ],
)
def test_esxi_addresses(load, load_error, address, problem):
    text = f'[hosts.h]\nbmc.kind = "esxi"\nbmc.address = "{address}"\nbmc.domain = "web 01"\n'
    if problem is None:
        assert load("a.toml", text).hosts["h"].bmc.domain == "web 01"
    else:
        assert problem in load_error("a.toml", text)[1]


def test_a_hypervisor_kind_needs_its_guest_and_a_bmc_kind_has_none(load_error):
    _, missing = load_error("a.toml", '[hosts.h]\nbmc.kind = "libvirt"\nbmc.address = "qemu:///system"\n')
    assert "needs bmc.domain" in missing
    _, stray = load_error("a.toml", '[hosts.h]\nbmc.address = "192.0.2.1"\nbmc.domain = "vm01"\n')
    assert "set bmc.kind to 'libvirt' or 'esxi'" in stray


def test_a_hypervisor_method_is_a_kind_not_a_bmc_method(load_error):
    _, message = load_error(
        "a.toml", '[hosts.h]\nbmc.address = "192.0.2.1"\nbmc.methods = ["redfish", "libvirt"]\n'
    )
    assert "write bmc.kind = 'libvirt'" in message


def _host(name: str, **bmc: object) -> Host:
    return Host(name=name, bmc=BmcConfig(**bmc))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        # VirtualBMC: one address, one IPMI port per guest
        (
            {"kind": "ipmi", "address": "127.0.0.1", "ipmi_port": 6230},
            {"kind": "ipmi", "address": "127.0.0.1", "ipmi_port": 6231},
            False,
        ),
        ({"kind": "ipmi", "address": "bmc01"}, {"address": "https://BMC01:443"}, True),
        ({"address": "bmc01"}, {"address": "bmc01:8443"}, False),
        ({"address": "bmc01", "system": "1"}, {"address": "bmc01", "system": "2"}, False),
        (
            {"kind": "libvirt", "address": "qemu:///system", "domain": "a"},
            {"kind": "libvirt", "address": "qemu:///system", "domain": "b"},
            False,
        ),
        (
            {"kind": "libvirt", "address": "qemu:///system", "domain": "a"},
            {"kind": "libvirt", "address": "qemu:///system", "domain": "a"},
            True,
        ),
        (
            {"kind": "esxi", "address": "esx1", "domain": "a"},
            {"kind": "esxi", "address": "ssh://root@esx1:22", "domain": "a"},
            True,
        ),
    ],
)
def test_the_machine_key_tells_machines_apart(first, second, same):
    one, two = _host("one", **first), _host("two", **second)
    assert (one.bmc.machine == two.bmc.machine) is same
    assert bool(shared_bmcs([one, two])) is same
