"""Where a simulated host's kdump writes, and how the inventory describes it.

A *host layout* is what a fleet user picks (``layouts=["rhel-local", "suse-ssh", ...]``):
a :mod:`mocks.kdump` writer layout, plus whether the dump goes to the host's own
directory (a local disk, as ``/var/crash``) or to a directory shared by many hosts (an
NFS export, an SSH dump server), and then which identity kdump puts in the directory
name so that oob can tell the hosts apart there (docs/KDUMP.md: RHEL, old SUSE and Debian
write the IP address, SUSE >= 1.9 the host name).

Plain data, no imports from the rest of the mock: :mod:`mocks.host` validates against it
and :mod:`mocks.kdump` imports :mod:`mocks.host`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: "ip": the host's address; "hostname": its name; None: the local form (no identity)
Identity = Literal["ip", "hostname"]
#: a directory shared by every host of that kind, under the fleet's dump root
Share = Literal["nfs", "ssh"]


@dataclass(frozen=True)
class HostLayout:
    name: str
    #: the :data:`mocks.kdump.LAYOUTS` entry that writes it
    writer: str
    #: ``dump.layout`` in oob's inventory: rhel, suse (both generations) or debian
    family: str
    share: Share | None = None
    identity: Identity | None = None


HOST_LAYOUTS: dict[str, HostLayout] = {
    layout.name: layout
    for layout in (
        HostLayout("rhel-local", "rhel-local", "rhel"),
        HostLayout("rhel-nfs", "rhel-nfs", "rhel", "nfs", "ip"),
        HostLayout("rhel-ssh", "rhel-ssh", "rhel", "ssh", "ip"),
        HostLayout("rhel-scp", "rhel-scp", "rhel", "ssh", "ip"),
        HostLayout("rhel-old", "rhel-old", "rhel"),
        HostLayout("rhel-raw", "rhel-raw", "rhel"),
        HostLayout("rhel-test", "rhel-test", "rhel"),
        HostLayout("suse", "suse", "suse"),
        HostLayout("suse-nfs", "suse", "suse", "nfs", "hostname"),
        HostLayout("suse-ssh", "suse-ssh", "suse", "ssh", "hostname"),
        HostLayout("suse-old", "suse-old", "suse"),
        HostLayout("suse-old-nfs", "suse-old", "suse", "nfs", "ip"),
        HostLayout("suse-old-ssh", "suse-old-ssh", "suse", "ssh", "ip"),
        HostLayout("debian", "debian", "debian"),
        HostLayout("debian-nfs", "debian", "debian", "nfs", "ip"),
        HostLayout("debian-ssh", "debian-ssh", "debian", "ssh", "ip"),
        HostLayout("debian-compressed", "debian-compressed", "debian"),
        HostLayout("debian-vmcore", "debian-vmcore", "debian"),
    )
}

#: family names stand for their plainest layout
ALIASES: dict[str, str] = {"rhel": "rhel-local", "fedora": "rhel-local", "ubuntu": "debian"}

#: one of each family, cycled over the fleet's hosts
DEFAULT_LAYOUTS: tuple[str, ...] = ("rhel", "suse", "debian")


def host_layout(name: str) -> HostLayout:
    """The layout called ``name`` (or a family alias); ValueError naming the known ones."""
    key = name.strip().lower()
    try:
        return HOST_LAYOUTS[ALIASES.get(key, key)]
    except KeyError:
        known = ", ".join([*HOST_LAYOUTS, *ALIASES])
        raise ValueError(f"unknown dump layout {name!r}; known: {known}") from None
