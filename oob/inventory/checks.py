"""Checks across hosts that no single host entry can catch."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from oob.model import Host


def bmc_identity(host: Host) -> tuple[str, str, int, str]:
    """Which machine an action through this host's BMC lands on:
    (protocol, BMC host, port, system)."""
    if host.bmc.kind == "ipmi":
        return ("ipmi", host.bmc.hostname.lower(), host.bmc.ipmi_port, "")
    parts = urlsplit(host.bmc.redfish_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return ("redfish", (parts.hostname or "").lower(), port, (host.bmc.system or "").strip("/"))


def shared_bmcs(hosts: Iterable[Host]) -> list[tuple[Host, Host]]:
    """Pairs of hosts whose BMC settings reach the same machine: a copy-paste slip in an
    inventory that would send one host's NMI to another."""
    seen: dict[tuple[str, str, int, str], Host] = {}
    pairs: list[tuple[Host, Host]] = []
    for host in hosts:
        key = bmc_identity(host)
        if key in seen:
            pairs.append((seen[key], host))
        else:
            seen[key] = host
    return pairs


def describe_shared(first: Host, second: Host) -> str:
    system = f" system '{first.bmc.system}'" if first.bmc.system else ""
    return (
        f"hosts '{first.name}' and '{second.name}' use the same BMC {first.bmc.address}{system}: "
        "an action on one would hit the other's machine; give each host its own bmc.address or bmc.system"
    )
