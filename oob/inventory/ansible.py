"""Ansible YAML inventories, read as they are.

    all:
      vars: {bmc_username: admin, bmc_password: "env:OOB_BMC_PASSWORD"}
      children:
        web:
          vars: {bmc_kind: ilo}
          hosts:
            web[01:20].example.com: {bmc_address: ...}

Groups nest to any depth (``children``); top-level groups need no ``all``.  Variables are
applied like Ansible does: ``all`` first, then every group the host belongs to (directly or
through children) ordered by depth and name, so a child group overrides its parent; then the
host's own variables.  Only ``ansible_host``, ``oob_aliases`` and ``bmc_*``/``dump_*`` are read;
an unknown ``bmc_*``, ``dump_*`` or ``oob_*`` variable is an error (a typo would otherwise be
ignored).  ``!vault`` values and Jinja templates cannot be evaluated here and are errors.
``group_vars/`` and ``host_vars/`` directories are not read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from oob.errors import UsageError
from oob.inventory.ranges import MAX_HOSTS, Range, expand_parts, pattern_count, split_host_pattern
from oob.inventory.schema import (
    FileInventory,
    KeyPath,
    Layer,
    Source,
    build_host,
    check_name,
    check_value,
    did_you_mean,
    shown,
    type_name,
)

#: Ansible variable -> inventory key
VARIABLES: dict[str, str] = {
    "ansible_host": "address",
    "oob_aliases": "aliases",
    "oob_probe": "probe",
    "oob_notify": "notify",
    "bmc_address": "bmc.address",
    "bmc_kind": "bmc.kind",
    "bmc_username": "bmc.username",
    "bmc_user": "bmc.username",
    "bmc_password": "bmc.password",
    "bmc_verify": "bmc.verify",
    "bmc_ca_file": "bmc.ca_file",
    "bmc_fingerprint": "bmc.fingerprint",
    "bmc_system": "bmc.system",
    "bmc_methods": "bmc.methods",
    "bmc_ipmi_port": "bmc.ipmi_port",
    "bmc_timeout": "bmc.timeout",
    "dump_target": "dump.target",
    "dump_layout": "dump.layout",
    "dump_fence_kdump": "dump.fence_kdump",
    "oob_ssh_user": "ssh.user",
    "oob_ssh_port": "ssh.port",
    "oob_ssh_jump": "ssh.jump",
    "oob_ssh_key": "ssh.key",
    "oob_ssh_known_hosts": "ssh.known_hosts",
}
#: variables with these prefixes are ours: an unknown one is a typo, not someone else's variable
OUR_PREFIXES: tuple[str, ...] = ("bmc_", "dump_", "oob_")
_LABELS: dict[str, str] = {}
for _variable, _key in VARIABLES.items():
    _LABELS.setdefault(_key, _variable)

GROUP_KEYS: tuple[str, ...] = ("hosts", "children", "vars")
#: most host names one file lists, ranges expanded (a name listed twice counts twice)
MAX_HOSTS_PER_PATTERN = MAX_HOSTS
#: most groups a host may be in, directly or through children
MAX_GROUPS_PER_HOST = 1_000


def looks_ansible(data: dict[Any, Any]) -> bool:
    """Tell an Ansible inventory from a native one read from YAML.

    Ansible: ``all:`` at the top, or only groups made of ``hosts``/``children``/``vars``.  A file
    whose top-level keys are the native ``defaults``/``groups``/``hosts`` is native unless every
    one of them is such a group (an Ansible group may be called "hosts").
    """
    if "all" in data:
        return True
    group_shaped = all(
        value is None or (isinstance(value, dict) and set(value) <= set(GROUP_KEYS))
        for value in data.values()
    )
    if set(data) <= {"defaults", "groups", "hosts"}:
        return group_shaped and any(data.values())
    return group_shaped


@dataclass
class _Group:
    vars: Layer = field(default_factory=dict)
    #: ordered sets (dicts of None): membership is checked for every host and child listed
    children: dict[str, None] = field(default_factory=dict)
    hosts: dict[str, None] = field(default_factory=dict)
    path: KeyPath = ()


class _Reader:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.groups: dict[str, _Group] = {"all": _Group(path=("all",))}
        #: host -> its own variables, one layer per place it is listed (later ones win)
        self.host_vars: dict[str, list[Layer]] = {}
        self.host_paths: dict[str, KeyPath] = {}
        self._visiting: list[int] = []
        #: host names listed so far (a host listed twice counts twice): bounded by the cap
        self.listed = 0

    def group(self, name: str, body: Any, path: KeyPath) -> None:
        group = self.groups.setdefault(name, _Group(path=path))
        if body is None:
            return
        context = f"group '{name}'"
        if not isinstance(body, dict):
            raise self.source.error(
                f"expected a group (hosts, children, vars), got {type_name(body)}", path=path, context=context
            )
        if id(body) in self._visiting:  # a YAML alias that contains itself
            raise self.source.error(
                "the group contains itself (recursive YAML alias)", path=path, context=context
            )
        for key in body:
            if key not in GROUP_KEYS:
                raise self.source.error(
                    f"unknown key in a group{did_you_mean(str(key), GROUP_KEYS)}; expected hosts, children or vars",
                    path=(*path, str(key)),
                    context=context,
                    key=str(key),
                )
        self._visiting.append(id(body))
        group.vars.update(self.variables(body.get("vars"), (*path, "vars"), context))
        for pattern, variables in self.mapping(body, "hosts", path, context).items():
            host_path = (*path, "hosts", str(pattern))
            layer = self.variables(variables, host_path, f"host '{pattern}'")
            for name_ in self.expand(pattern, host_path):
                host = check_name(self.source, name_, host_path, "host")
                self.host_vars.setdefault(host, []).append(layer)
                self.host_paths.setdefault(host, host_path)
                group.hosts.setdefault(host)
        for child, child_body in self.mapping(body, "children", path, context).items():
            child_path = (*path, "children", str(child))
            child_name = check_name(self.source, child, child_path, "group")
            group.children.setdefault(child_name)
            self.group(child_name, child_body, child_path)
        self._visiting.pop()

    def mapping(self, body: dict[Any, Any], key: str, path: KeyPath, context: str) -> dict[Any, Any]:
        value = body.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.source.error(
                f"expected a mapping, got {type_name(value)}", path=(*path, key), context=context, key=key
            )
        return value

    def variables(self, variables: Any, path: KeyPath, context: str) -> Layer:
        if variables is None:
            return {}
        if not isinstance(variables, dict):
            raise self.source.error(
                f"expected variables, got {type_name(variables)}", path=path, context=context
            )
        layer: Layer = {}
        for raw_name, value in variables.items():
            name = str(raw_name)
            var_path = (*path, name)
            key = VARIABLES.get(name)
            if key is None:
                if name.startswith(OUR_PREFIXES):
                    raise self.source.error(
                        f"unknown variable{did_you_mean(name, list(VARIABLES))}",
                        path=var_path,
                        context=context,
                        key=name,
                    )
                continue  # ansible_user, ntp_server, ...: not ours
            if key in layer:
                raise self.source.error(
                    f"set twice (as '{layer[key].label}' and '{name}')",
                    path=var_path,
                    context=context,
                    key=name,
                )
            if _has_template(value):
                raise self.source.error(
                    "Jinja templates are not supported here; use env:VAR, file:PATH, keyring:SERVICE/USER "
                    "or a plain value",
                    path=var_path,
                    context=context,
                    key=name,
                )
            layer[key] = check_value(self.source, key, value, path=var_path, context=context, label=name)
        return layer

    def expand(self, pattern: Any, path: KeyPath) -> list[str]:
        """``web[01:03].example.com`` -> web01..., ``[a:c]``, ``[0:10:2]``; several ranges allowed.

        The number of names is known before they are made (:mod:`oob.inventory.ranges`); one
        file lists at most :data:`MAX_HOSTS_PER_PATTERN` names in all."""
        text = str(pattern) if isinstance(pattern, (str, int)) and not isinstance(pattern, bool) else None
        if text is None:
            raise self.source.error(f"host name must be a string, got {type_name(pattern)}", path=path)
        if "[" not in text:
            parts: list[str | Range] = [text]
        else:
            try:
                parts = split_host_pattern(text)
            except UsageError as exc:
                raise self.source.error(f"host pattern '{shown(text)}': {exc.message}", path=path) from None
        count = pattern_count(parts)
        if self.listed + count > MAX_HOSTS_PER_PATTERN:
            raise self.source.error(
                f"host pattern '{shown(text)}' gives {count} hosts; one file lists at most {MAX_HOSTS_PER_PATTERN}"
                if count > 1
                else f"more than {MAX_HOSTS_PER_PATTERN} hosts in one file",
                path=path,
            )
        self.listed += count
        return expand_parts(parts)

    def depths(self) -> dict[str, int]:
        """Longest distance from ``all``; raises on a cycle of children.

        Iterative: a chain of groups made of top-level entries is as long as the file allows."""
        parents: dict[str, list[str]] = {}
        for name, group in self.groups.items():
            for child in group.children:
                parents.setdefault(child, []).append(name)
        depth: dict[str, int] = {}
        on_path: dict[str, int] = {}
        for root in self.groups:
            if root in depth:
                continue
            # each frame: (group, its parents still to visit, last first)
            stack: list[tuple[str, list[str]]] = [(root, parents.get(root, [])[::-1])]
            on_path[root] = 0
            while stack:
                name, pending = stack[-1]
                if pending:
                    parent = pending.pop()
                    if parent in on_path:
                        chain = [frame[0] for frame in stack]
                        cycle = " -> ".join([*chain[on_path[parent] :], parent])
                        raise self.source.error(
                            f"groups contain each other: {cycle}",
                            path=self.groups[parent].path,
                            context=f"group '{parent}'",
                        )
                    if parent not in depth:
                        on_path[parent] = len(stack)
                        stack.append((parent, parents.get(parent, [])[::-1]))
                    continue
                depth[name] = max((depth[parent] + 1 for parent in parents.get(name, ())), default=0)
                del on_path[name]
                stack.pop()
        return depth

    def ancestry(self, depth: dict[str, int]) -> dict[str, frozenset[str]]:
        """Each group with every group above it; at most :data:`MAX_GROUPS_PER_HOST` of them."""
        parents: dict[str, list[str]] = {}
        for name, group in self.groups.items():
            for child in group.children:
                parents.setdefault(child, []).append(name)
        above: dict[str, frozenset[str]] = {}
        for name in sorted(self.groups, key=depth.__getitem__):
            groups = {name}
            for parent in parents.get(name, ()):
                groups.update(above[parent])
                if len(groups) > MAX_GROUPS_PER_HOST:
                    raise self.source.error(
                        f"the group is inside more than {MAX_GROUPS_PER_HOST} groups",
                        path=self.groups[name].path,
                        context=f"group '{name}'",
                    )
            above[name] = frozenset(groups)
        return above


def _has_template(value: Any) -> bool:
    """A Jinja template in a string or a list of strings (nothing deeper is a valid value)."""
    items = value if isinstance(value, list) else [value]
    return any(isinstance(item, str) and ("{{" in item or "{%" in item) for item in items)


def parse_ansible(source: Source, data: dict[Any, Any]) -> FileInventory:
    reader = _Reader(source)
    for raw_name, body in data.items():
        if raw_name == "all":
            reader.group("all", body, ("all",))
            continue
        name = check_name(source, raw_name, (str(raw_name),), "group")
        reader.groups["all"].children.setdefault(name)
        reader.group(name, body, (name,))
    if not reader.host_paths:
        raise source.error("no hosts in this inventory")

    depth = reader.depths()
    above = reader.ancestry(depth)
    member_of: dict[str, set[str]] = {}
    for name, group in reader.groups.items():
        for host in group.hosts:
            member_of.setdefault(host, set()).add(name)

    result = FileInventory(source, [], {}, {name: [] for name in reader.groups if name != "all"})
    for host, path in reader.host_paths.items():
        groups: set[str] = set()
        for name in member_of[host]:
            groups.update(above[name])
            if len(groups) > MAX_GROUPS_PER_HOST:
                raise source.error(
                    f"the host is in more than {MAX_GROUPS_PER_HOST} groups",
                    path=path,
                    context=f"host '{host}'",
                )
        ordered = sorted(groups - {"all"}, key=lambda name: (depth[name], name))
        layers = [
            reader.groups["all"].vars,
            *(reader.groups[name].vars for name in ordered),
            *reader.host_vars[host],
        ]
        result.hosts.append(
            build_host(
                host, source, path, layers, groups=tuple(ordered), label=lambda key: _LABELS.get(key, key)
            )
        )
        result.host_paths[host] = path
        for name in ordered:
            result.groups[name].append(host)
    return result
