"""Checks across hosts that no single host entry can catch."""

from __future__ import annotations

from collections.abc import Iterable

from oob.model import Host


def shared_bmcs(hosts: Iterable[Host]) -> list[tuple[Host, Host]]:
    """Pairs of hosts whose BMC settings reach the same machine: a copy-paste slip in an
    inventory that would send one host's NMI to another."""
    seen: dict[str, Host] = {}
    pairs: list[tuple[Host, Host]] = []
    for host in hosts:
        key = host.bmc.machine
        if key in seen:
            pairs.append((seen[key], host))
        else:
            seen[key] = host
    return pairs


def describe_shared(first: Host, second: Host) -> str:
    if first.bmc.is_hypervisor:
        return (
            f"hosts '{first.name}' and '{second.name}' name the same guest '{first.bmc.domain}' on "
            f"{first.bmc.address}: an action on one would hit the other's machine; give each host its own bmc.domain"
        )
    system = f" system '{first.bmc.system}'" if first.bmc.system else ""
    return (
        f"hosts '{first.name}' and '{second.name}' use the same BMC {first.bmc.address}{system}: "
        "an action on one would hit the other's machine; give each host its own bmc.address or bmc.system"
    )
