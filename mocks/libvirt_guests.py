"""Virtual machines for the mock fleet: guests of libvirt's test driver.

libvirt ships a test hypervisor (``test:///PATH.xml``) that runs inside the client process:
no daemon, no QEMU.  :class:`MockGuests` writes one node description with a running guest
per mock VM (``vm01``, ``vm02``…, fixed UUIDs, 64 MiB each), and the fleet's inventory names
each as ``bmc.kind = "libvirt"``, ``bmc.address = "test:///…/guests.xml"``, ``bmc.domain``.
oob's real libvirt driver then talks to real libvirt code: the NMI (``virDomainInjectNMI``),
power state and actions, ``oob bmc info``, ``oob dump`` (the test driver writes a 15-byte
stand-in for a core).

What it cannot do: the test driver's state lives in each connection, read afresh from the
file every time oob connects.  An NMI or a power action is accepted and then forgotten —
the mock fleet never sees it, no mock kdump writes a dump and the next run finds the guest
running again.  VMs in the fleet exercise oob's libvirt path, not the crash lifecycle the
mock BMCs' hosts simulate (tests/vm has a real libvirtd and a QEMU guest for that).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from .inventory_writer import InventoryHost, write_atomically

GUESTS_FILE = "guests.xml"
#: fixed, so inventories and tests can name a guest by UUID too
_NAMESPACE = uuid.UUID("4f0b7a4e-0d8c-4a57-9b3e-6d1c2a9e7f10")
GUEST_MEMORY_MIB = 64


@dataclass(frozen=True)
class MockGuest:
    name: str
    uuid: str


def guest_uuid(name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, name))


def render_guests(guests: list[MockGuest]) -> str:
    """A libvirt test-driver node: one running guest each (libvirt's docs/drvtest.html)."""
    parts = ["<node>"]
    for guest in guests:
        parts += [
            '  <domain type="test">',
            f"    <name>{escape(guest.name)}</name>",
            f"    <uuid>{guest.uuid}</uuid>",
            f'    <memory unit="MiB">{GUEST_MEMORY_MIB}</memory>',
            "    <vcpu>1</vcpu>",
            "    <os><type>hvm</type></os>",
            "  </domain>",
        ]
    parts.append("</node>")
    return "\n".join(parts) + "\n"


class MockGuests:
    """``count`` guests described in ``workdir/guests.xml``."""

    def __init__(self, workdir: Path, count: int) -> None:
        if count < 0:
            raise ValueError("the number of VMs cannot be negative")
        self.guests = [MockGuest(f"vm{i:02d}", guest_uuid(f"vm{i:02d}")) for i in range(1, count + 1)]
        self.path = Path(workdir).absolute() / GUESTS_FILE
        if self.guests:
            write_atomically(self.path, render_guests(self.guests), mode=0o644)

    @property
    def uri(self) -> str:
        return f"test://{self.path}"

    def inventory_hosts(self) -> list[InventoryHost]:
        return [
            InventoryHost(
                guest.name,
                "vm",
                "libvirt",
                self.uri,
                # the guest's own address: none that answers (its probe is not simulated)
                "127.0.0.1",
                None,
                domain=guest.name,
            )
            for guest in self.guests
        ]

    def describe(self) -> list[dict[str, str]]:
        return [{"name": g.name, "uuid": g.uuid, "uri": self.uri, "domain": g.name} for g in self.guests]
