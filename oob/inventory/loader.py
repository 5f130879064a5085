"""Load inventory files into one :class:`Inventory`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from oob.errors import InventoryError, UsageError
from oob.inventory.ansible import looks_ansible, parse_ansible
from oob.inventory.files import read_inventory_file
from oob.inventory.native import parse_native
from oob.inventory.schema import FileInventory, type_name
from oob.inventory.selectors import select_hosts
from oob.model import Host

ENV_VAR = "OOB_INVENTORY"


@dataclass(frozen=True, eq=False)
class Inventory:
    #: host name -> host, in file order
    hosts: dict[str, Host]
    #: group -> host names, in host order
    groups: dict[str, tuple[str, ...]]
    #: the files, as given
    files: tuple[str, ...]

    def select(self, selectors: Sequence[str]) -> list[Host]:
        """Hosts matching names, globs, ``@group``, ``all``, ``node[01-20]``, ``a,b``.

        Raises :class:`~oob.errors.UsageError` naming each selector that matches nothing.
        """
        return select_hosts(self.hosts, self.groups, selectors)


def inventory_paths(cli_paths: Sequence[Path], environ: Mapping[str, str]) -> list[Path]:
    """``-i`` paths if given, else ``$OOB_INVENTORY`` (``os.pathsep``-separated)."""
    if cli_paths:
        return list(cli_paths)
    value = environ.get(ENV_VAR, "")
    paths = [Path(os.path.expanduser(part)) for part in value.split(os.pathsep) if part.strip()]
    if not paths:
        raise UsageError(f"no inventory: use -i FILE or set {ENV_VAR}")
    return paths


def load_inventory(paths: Sequence[Path | str]) -> Inventory:
    """Read and check every file; hosts keep file order.  Raises :class:`InventoryError`."""
    if not paths:
        raise InventoryError(f"no inventory: use -i FILE or set {ENV_VAR}")
    hosts: dict[str, Host] = {}
    groups: dict[str, list[str]] = {}
    # where each host is defined, located only for a message: finding a line scans the file
    defined_in: dict[str, FileInventory] = {}
    for path in paths:
        parsed = _load_file(Path(path))
        source = parsed.source
        for host in parsed.hosts:
            if host.name in hosts:
                first = defined_in[host.name]
                raise source.error(
                    f"host '{host.name}' is already defined in {first.source.where(first.host_paths[host.name])}",
                    path=parsed.host_paths[host.name],
                )
            hosts[host.name] = host
            defined_in[host.name] = parsed
        for group, names in parsed.groups.items():
            groups.setdefault(group, []).extend(names)
    order = {name: index for index, name in enumerate(hosts)}
    return Inventory(
        hosts=hosts,
        groups={
            group: tuple(sorted(dict.fromkeys(names), key=order.__getitem__))
            for group, names in groups.items()
        },
        files=tuple(str(path) for path in paths),
    )


def _load_file(path: Path) -> FileInventory:
    data, source = read_inventory_file(path)
    if data is None or data == {}:
        raise source.error("empty inventory: no hosts")
    if not isinstance(data, dict):
        raise source.error(
            f"expected a mapping at the top level (hosts/groups/defaults, or Ansible's all:), got {type_name(data)}"
        )
    if path.suffix.lower() != ".toml" and looks_ansible(data):
        return parse_ansible(source, data)
    return parse_native(source, data)
