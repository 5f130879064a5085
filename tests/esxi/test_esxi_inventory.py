"""An ESXi guest in the inventory: the SSH address forms and the machine key that locks, the
repeat guard and the duplicate check use."""

from __future__ import annotations

import pytest

from oob.drivers.esxi.driver import esxi_address
from oob.inventory.checks import shared_bmcs
from oob.model import BmcConfig, Host, SshConfig


@pytest.mark.parametrize(
    ("address", "user", "server", "port"),
    [
        ("esx07.example.com", None, "esx07.example.com", None),
        ("esx07.example.com:2222", None, "esx07.example.com", 2222),
        ("ssh://root@esx07.example.com", "root", "esx07.example.com", None),
        ("ssh://root@192.0.2.7:22/", "root", "192.0.2.7", 22),
        ("ssh://root@[2001:db8::7]:2222", "root", "2001:db8::7", 2222),
    ],
)
def test_address_forms(address: str, user: str | None, server: str, port: int | None) -> None:
    host = Host("g", bmc=BmcConfig(kind="esxi", address=address, domain="g"), ssh=SshConfig(user="guestuser"))
    ssh = esxi_address(host)
    # the guest's own ssh.user is the guest's login, never the ESXi host's
    assert (ssh.user, ssh.server, ssh.port, ssh.identity_files) == (user, server, port, ())


@pytest.mark.parametrize(
    "other", ["ESX07.example.com:22", "ssh://root@esx07.example.com", "ssh://esx07.example.com:22/"]
)
def test_one_vm_named_through_two_address_forms_is_one_machine(other: str) -> None:
    first = Host("a", bmc=BmcConfig(kind="esxi", address="esx07.example.com", domain="web01"))
    second = Host("b", bmc=BmcConfig(kind="esxi", address=other, domain="web01"))
    assert first.bmc.machine == second.bmc.machine == "esx07.example.com/web01"
    assert shared_bmcs([first, second]) == [(first, second)]
    # another VM, or another sshd on the host, is another machine
    third = Host("c", bmc=BmcConfig(kind="esxi", address="esx07.example.com", domain="web02"))
    fourth = Host("d", bmc=BmcConfig(kind="esxi", address="esx07.example.com:2222", domain="web01"))
    assert shared_bmcs([first, third, fourth]) == []
