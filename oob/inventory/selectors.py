"""Host selectors, as typed on the command line: ``oob nmi web01 'web*' @db node[01-20] a,b``.

    web01            a host name (or, failing that, a host's address or alias)
    web*  web0?      a glob (fnmatch: ``*``, ``?``, ``[abc]``)
    node[01-20]      a numeric range; zero padding is kept; several per selector
                     (``rack[1-2]-node[01-04]``); ``[01:20]`` (Ansible's spelling) too
    @db  @web*       the hosts of a group (globs and ranges allowed)
    all  @all        every host
    a,b              several selectors in one argument

Ranges are matched, not expanded, so ``node[1-20]`` selects the hosts that exist among
node1..node20.  The result keeps the order of the selector that matched first, each host once;
within one selector, inventory order.  A selector that matches nothing is a
:class:`~oob.errors.UsageError` naming it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence

from oob.errors import UsageError
from oob.model import Host

_RANGE = re.compile(r"\[(\d+)[-:](\d+)\]")
_ALL = ("all", "@all")


def has_pattern(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def compile_pattern(pattern: str) -> Callable[[str], bool]:
    """A predicate for a glob that may contain numeric ranges ``[01-20]``."""
    regex: list[str] = []
    ranges: list[tuple[int, int]] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        numeric = _RANGE.match(pattern, i)
        if numeric:
            start, end = numeric.group(1), numeric.group(2)
            if int(start) > int(end):
                raise UsageError(f"selector '{pattern}': the range [{start}-{end}] goes backwards")
            padded = len(start) > 1 and start.startswith("0")
            regex.append(rf"(\d{{{len(start)}}})" if padded else r"(0|[1-9]\d*)")
            ranges.append((int(start), int(end)))
            i = numeric.end()
        elif ch == "*":
            regex.append(".*")
            i += 1
        elif ch == "?":
            regex.append(".")
            i += 1
        elif ch == "[" and (close := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : close]
            if body.startswith("!"):
                body = "^" + body[1:]
            regex.append("[" + body.replace("\\", "\\\\") + "]")
            i = close + 1
        else:
            regex.append(re.escape(ch))
            i += 1
    try:
        compiled = re.compile("".join(regex))
    except re.error:
        raise UsageError(f"selector '{pattern}' is not a valid pattern") from None

    def matches(name: str) -> bool:
        match = compiled.fullmatch(name)
        if match is None:
            return False
        return all(low <= int(value) <= high for value, (low, high) in zip(match.groups(), ranges))

    return matches


def select_hosts(
    hosts: Mapping[str, Host], groups: Mapping[str, Sequence[str]], selectors: Sequence[str]
) -> list[Host]:
    parts = [part.strip() for selector in selectors for part in selector.split(",")]
    parts = [part for part in parts if part]
    if not parts:
        raise UsageError("no hosts selected: give host names, globs, @group or all")
    chosen: dict[str, Host] = {}
    failures: list[str] = []
    for part in parts:
        names = _match(part, hosts, groups)
        if not names:
            failures.append(_explain(part, hosts, groups))
        for name in names:
            chosen.setdefault(name, hosts[name])
    if failures:
        raise UsageError("; ".join(failures))
    return list(chosen.values())


def _match(selector: str, hosts: Mapping[str, Host], groups: Mapping[str, Sequence[str]]) -> list[str]:
    if selector in _ALL:
        return list(hosts)
    if selector.startswith("@"):
        wanted = selector[1:]
        if has_pattern(wanted):
            matches = compile_pattern(wanted)
            members = {host for group, names in groups.items() if matches(group) for host in names}
        else:
            members = set(groups.get(wanted, ()))
        return [name for name in hosts if name in members]
    if has_pattern(selector):
        matches = compile_pattern(selector)
        return [name for name in hosts if matches(name)]
    if selector in hosts:
        return [selector]
    # an address or alias pasted from an alert
    return [name for name, host in hosts.items() if selector == host.address or selector in host.aliases]


def _explain(selector: str, hosts: Mapping[str, Host], groups: Mapping[str, Sequence[str]]) -> str:
    if selector.startswith("@"):
        group = selector[1:]
        if group in groups:
            return f"group '{group}' has no hosts"
        close = difflib.get_close_matches(group, list(groups), n=1, cutoff=0.6)
        hint = f" (did you mean '@{close[0]}'?)" if close else ""
        return f"no group '{group}' in the inventory{hint}"
    if selector in groups:
        return f"no host '{selector}' (did you mean the group '@{selector}'?)"
    close = difflib.get_close_matches(selector, list(hosts), n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"no host matches '{selector}'{hint}"
