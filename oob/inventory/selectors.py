"""Host selectors, as typed on the command line: ``oob nmi web01 'web*' @db node[01-20] a,b``.

    web01            a host name (or, failing that, a host's address or alias)
    web*  web0?      a glob (as fnmatch: ``*``, ``?``, ``[abc]``, ``[a-c]``, ``[!abc]``), matched
                     without backtracking: time linear in the pattern times the name
    node[01-20]      a numeric range; zero padding is kept; several per selector
                     (``rack[1-2]-node[01-04]``); ``[01:20]`` (Ansible's spelling) too
    @db  @web*       the hosts of a group (globs and ranges allowed)
    all  @all        every host
    a,b              several selectors in one argument

Ranges are matched, not expanded, so ``node[1-20]`` selects the hosts that exist among
node1..node20; their bounds are ASCII digits, at most 18 of them.  The result keeps the order of the selector that matched first, each host once;
within one selector, inventory order.  A selector that matches nothing is a
:class:`~oob.errors.UsageError` naming it, as is a malformed one (an unclosed ``[``, a range
that goes backwards, a character that is not ASCII, more than :data:`MAX_SELECTOR` characters).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from oob.errors import UsageError
from oob.inventory.ranges import MAX_DIGITS, Range, read_number
from oob.model import Host
from oob.safetext import is_printable, printable

_RANGE = re.compile(r"\[([0-9]+)[-:]([0-9]+)\]", re.ASCII)
_ALL = ("all", "@all")
#: longest selector: host names are at most 255 characters, a pattern needs little more
MAX_SELECTOR = 1000
_DIGITS = frozenset("0123456789")
#: failing selectors named in one message
_FAILURES_SHOWN = 10


def has_pattern(text: str) -> bool:
    return any(ch in text for ch in "*?[")


@dataclass(frozen=True)
class _CharClass:
    """``[abc]``, ``[a-z0-9]``, ``[!x]``: one character."""

    chars: frozenset[str]
    spans: tuple[tuple[str, str], ...]
    negated: bool

    def __call__(self, ch: str) -> bool:
        inside = ch in self.chars or any(low <= ch <= high for low, high in self.spans)
        return inside != self.negated


class _Wild(Enum):
    ANY = "?"
    STAR = "*"


#: a glob, compiled: a literal character, "?" or "*", a character class or a numeric range
_Token = str | _Wild | _CharClass | Range


def _fail(pattern: str, problem: str) -> UsageError:
    return UsageError(f"selector '{printable(pattern)}': {problem}")


def _tokens(pattern: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        numeric = _RANGE.match(pattern, i)
        if numeric:
            start, end = numeric.group(1), numeric.group(2)
            try:
                low, high = read_number(start, "start"), read_number(end, "end")
            except UsageError as exc:
                raise _fail(pattern, f"the range [{start}-{end}]: {exc.message}") from None
            if low > high:
                raise _fail(pattern, f"the range [{start}-{end}] goes backwards")
            width = len(start) if len(start) > 1 and start.startswith("0") else 0
            tokens.append(Range(low, high, 1, width))
            i = numeric.end()
        elif ch == "*":
            if not tokens or tokens[-1] is not _Wild.STAR:  # "**" is "*"
                tokens.append(_Wild.STAR)
            i += 1
        elif ch == "?":
            tokens.append(_Wild.ANY)
            i += 1
        elif ch == "[":
            close = pattern.find("]", i + 2)
            if close == -1:
                raise _fail(pattern, "'[' without a closing ']'")
            if any(ch.isdigit() and not ch.isascii() for ch in pattern[i:close]):
                raise _fail(pattern, "a range takes the digits 0-9 only")
            tokens.append(_char_class(pattern, pattern[i + 1 : close]))
            i = close + 1
        else:
            tokens.append(ch)
            i += 1
    return tokens


def _char_class(pattern: str, body: str) -> _CharClass:
    negated = body.startswith("!")
    if negated:
        body = body[1:]
    chars: set[str] = set()
    spans: list[tuple[str, str]] = []
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            low, high = body[i], body[i + 2]
            if low > high:
                raise _fail(pattern, f"the character range {low}-{high} goes backwards")
            spans.append((low, high))
            i += 3
        else:
            chars.add(body[i])
            i += 1
    return _CharClass(frozenset(chars), tuple(spans), negated)


def compile_pattern(pattern: str) -> Callable[[str], bool]:
    """A predicate for a glob that may contain numeric ranges ``[01-20]``.

    Matching takes time linear in the pattern times the name (no backtracking: the set of
    name positions each pattern prefix can reach is kept as the bits of an int), so
    ``*a*a*a*a*a*a*a*a*b`` against a long name answers at once."""
    tokens = _tokens(pattern)

    def matches(name: str) -> bool:
        size = len(name)
        everywhere = (1 << (size + 1)) - 1
        # bit j: the tokens so far can match name[:j]
        reach = 1
        at: dict[str, int] = {}
        for index, ch in enumerate(name):
            at[ch] = at.get(ch, 0) | (1 << index)
        for token in tokens:
            if token is _Wild.STAR:
                # every position from the first one reached on
                reach = everywhere & ~((reach & -reach) - 1)
            elif token is _Wild.ANY:
                reach = (reach & ((1 << size) - 1)) << 1
            elif isinstance(token, str):
                reach = (reach & at.get(token, 0)) << 1
            elif isinstance(token, _CharClass):
                mask = 0
                for ch, bits in at.items():
                    if token(ch):
                        mask |= bits
                reach = (reach & mask) << 1
            else:
                reach = _reach_range(token, name, reach)
            if not reach:
                return False
        return bool(reach >> size & 1)

    return matches


def _reach_range(numbers: Range, name: str, reach: int) -> int:
    result = 0
    while reach:
        lowest = reach & -reach
        start = lowest.bit_length() - 1
        reach ^= lowest
        end = start
        while end < len(name) and end - start <= MAX_DIGITS and name[end] in _DIGITS:
            end += 1
            if numbers.contains(name[start:end]):
                result |= 1 << end
    return result


def _check_selector(selector: str) -> None:
    if len(selector) > MAX_SELECTOR:
        raise UsageError(f"selector '{printable(selector[:40])}...' is longer than {MAX_SELECTOR} characters")
    if not is_printable(selector) or not selector.isascii():
        raise _fail(selector, "only ASCII letters, digits and punctuation (host and group names are ASCII)")


def select_hosts(
    hosts: Mapping[str, Host], groups: Mapping[str, Sequence[str]], selectors: Sequence[str]
) -> list[Host]:
    parts = [part.strip() for selector in selectors for part in selector.split(",")]
    parts = [part for part in parts if part]
    for part in parts:
        _check_selector(part)
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
        more = f"; and {len(failures) - _FAILURES_SHOWN} more" if len(failures) > _FAILURES_SHOWN else ""
        raise UsageError("; ".join(failures[:_FAILURES_SHOWN]) + more)
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
            return f"group '{printable(group)}' has no hosts"
        close = difflib.get_close_matches(group, list(groups), n=1, cutoff=0.6)
        hint = f" (did you mean '@{close[0]}'?)" if close else ""
        return f"no group '{printable(group)}' in the inventory{hint}"
    if selector in groups:
        return f"no host '{printable(selector)}' (did you mean the group '@{selector}'?)"
    close = difflib.get_close_matches(selector, list(hosts), n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"no host matches '{printable(selector)}'{hint}"
