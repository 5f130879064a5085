"""Which host wrote a dump directory on a server shared by many.

Remote layouts put the host's IP (RHEL, old SUSE, Debian) or host name (SUSE, Debian
``HOSTTAG``) in the directory name.  A host is known by its inventory ``address``, its
``aliases`` and its ``name``.  IP addresses compare as addresses (``fd00::0:1`` is
``fd00::1``); names compare without case, and a short name matches a fully qualified one
only when no other host claims that short name.

Local-form names (``127.0.0.1-...``, ``unknown-...``, no prefix) say nothing about the
host: they are attributed only when a single watched host uses the target.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from oob.dump.layouts import DirName
from oob.model import Host


def normalize(identity: str) -> str:
    """The comparable form of an address or a name."""
    text = identity.strip().strip("[]").lower().rstrip(".")
    address = text.split("%", 1)[0]  # fe80::1%eth0: the zone is the sender's business
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return text
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return ip.compressed


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _short(name: str) -> str | None:
    """``web01`` for ``web01.example.com``; None for IPs and names without a domain."""
    if _is_ip(name) or "." not in name:
        return None
    return name.split(".", 1)[0]


@dataclass(frozen=True)
class Attribution:
    #: the host the directory belongs to, or None
    host: str | None
    #: why not, when ``host`` is None: "local-form", "unknown", "ambiguous"
    problem: str | None = None
    #: hosts that claim it, when ambiguous
    candidates: tuple[str, ...] = ()


class HostMatcher:
    """Attributes directory names to the hosts that use one dump target."""

    def __init__(self, hosts: Sequence[Host]) -> None:
        self.hosts = tuple(hosts)
        self._exact: dict[str, set[str]] = {}
        self._short: dict[str, set[str]] = {}
        for host in self.hosts:
            for identity in identities(host):
                key = normalize(identity)
                self._exact.setdefault(key, set()).add(host.name)
                short = _short(key)
                if short is not None:
                    self._short.setdefault(short, set()).add(host.name)
                elif not _is_ip(key):
                    # a short inventory name matches web01.example.com in a directory name
                    self._short.setdefault(key, set()).add(host.name)

    def attribute(self, dirname: DirName) -> Attribution:
        if dirname.identity is None:
            if len(self.hosts) == 1:
                return Attribution(self.hosts[0].name)
            return Attribution(None, "local-form")
        key = normalize(dirname.identity)
        exact = self._exact.get(key, set())
        if len(exact) == 1:
            return Attribution(next(iter(exact)))
        if len(exact) > 1:
            return Attribution(None, "ambiguous", tuple(sorted(exact)))
        short = _short(key) or (key if not _is_ip(key) else None)
        loose = self._short.get(short, set()) if short else set()
        if len(loose) == 1:
            return Attribution(next(iter(loose)))
        if len(loose) > 1:
            return Attribution(None, "ambiguous", tuple(sorted(loose)))
        return Attribution(None, "unknown")


def identities(host: Host) -> tuple[str, ...]:
    """What the host may write in its dump directory names."""
    found = [host.address] if host.address else []
    found.extend(host.aliases)
    found.append(host.name)
    return tuple(dict.fromkeys(item for item in found if item))
