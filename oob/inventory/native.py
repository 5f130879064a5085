"""The oob inventory format (TOML, or YAML of the same shape).

    [defaults]        settings for every host of this file
    [groups.NAME]     settings for the hosts that list NAME in ``groups`` (later groups win)
    [hosts.NAME]      one host; its own settings win over its groups' and the defaults

``defaults`` and ``groups`` apply to the hosts of the same file only.
"""

from __future__ import annotations

from typing import Any

from oob.inventory.schema import (
    FileInventory,
    Layer,
    Source,
    build_host,
    check_name,
    did_you_mean,
    native_layer,
    type_name,
)

TOP_KEYS: tuple[str, ...] = ("defaults", "groups", "hosts")


def parse_native(source: Source, data: dict[Any, Any]) -> FileInventory:
    for key in data:
        if key not in TOP_KEYS:
            raise source.error(
                f"unknown top-level key{did_you_mean(str(key), TOP_KEYS)}; expected defaults, groups and hosts",
                path=(str(key),),
                key=str(key),
            )
    defaults = native_layer(source, data.get("defaults"), ("defaults",), "defaults", host=False)

    group_layers: dict[str, Layer] = {}
    for raw_name, table in _table(source, data, "groups").items():
        name = check_name(source, raw_name, ("groups", str(raw_name)), "group")
        group_layers[name] = native_layer(source, table, ("groups", name), f"group '{name}'", host=False)

    hosts_table = _table(source, data, "hosts")
    if not hosts_table:
        raise source.error("no hosts in this inventory (add a [hosts.NAME] table)")
    result = FileInventory(source, [], {}, {name: [] for name in group_layers})
    for raw_name, table in hosts_table.items():
        path = ("hosts", str(raw_name))
        name = check_name(source, raw_name, path, "host")
        own = native_layer(source, table, path, f"host '{name}'", host=True)
        groups: tuple[str, ...] = own["groups"].value if "groups" in own else ()
        layers = [defaults, *(group_layers[group] for group in groups if group in group_layers), own]
        result.hosts.append(build_host(name, source, path, layers, groups=groups))
        result.host_paths[name] = path
        for group in groups:
            result.groups.setdefault(group, []).append(name)
    return result


def _table(source: Source, data: dict[Any, Any], key: str) -> dict[Any, Any]:
    table = data.get(key)
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise source.error(f"expected a table of {key}, got {type_name(table)}", path=(key,), key=key)
    return table
