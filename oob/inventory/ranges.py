"""Numeric and letter ranges in host names: ``node[01:20]``, ``db-[a:c]``, ``n[0:10:2]``.

Ansible inventories expand them into host names; selectors (``node[01-20]``) match them.
Either way a range is read by the same rules, and its size is known by arithmetic before a
single name is made, so a hostile ``web[0:99999999]`` costs nothing but an error:

- bounds are ASCII digits only (``'١٢'`` is refused, though Python's ``int`` would take it),
  at most :data:`MAX_DIGITS` of them, or single ASCII letters;
- a zero-padded start (``01``) keeps its width, and both ends must then have it;
- the start is not after the end, the step is a positive integer;
- an expansion never makes more than :data:`MAX_HOSTS` names (checked before making them).

Problems are :class:`~oob.errors.UsageError` with a short message; the callers put the
file, the pattern or the selector in front of it.
"""

from __future__ import annotations

import itertools
import math
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass

from oob.errors import UsageError

#: longest number in a range: 18 digits always fit a 64-bit integer
MAX_DIGITS = 18
#: most host names one pattern (and one Ansible file) may expand to
MAX_HOSTS = 100_000

_NUMBER = re.compile(rf"[0-9]{{1,{MAX_DIGITS}}}")
_LETTER = frozenset(string.ascii_letters)


@dataclass(frozen=True)
class Range:
    """``[start:end:step]`` of numbers (``width`` > 0 when zero-padded) or of letters."""

    start: int
    end: int
    step: int = 1
    #: digits of a zero-padded range (``01`` -> 2); 0 when not padded
    width: int = 0
    letters: bool = False

    @property
    def count(self) -> int:
        return (self.end - self.start) // self.step + 1

    def values(self) -> Iterator[str]:
        for number in range(self.start, self.end + 1, self.step):
            yield chr(number) if self.letters else str(number).zfill(self.width)

    def contains(self, digits: str) -> bool:
        """Whether ``digits`` (ASCII digits, as they appear in a host name) is one of the values."""
        if self.letters or not digits or len(digits) > MAX_DIGITS + 1:
            return False
        if self.width:
            if len(digits) != self.width:
                return False
        elif len(digits) > 1 and digits.startswith("0"):
            return False
        number = int(digits)
        return self.start <= number <= self.end and (number - self.start) % self.step == 0


def read_number(text: str, what: str) -> int:
    """A range bound: ASCII digits only, at most :data:`MAX_DIGITS`."""
    if not _NUMBER.fullmatch(text):
        if any(ch.isdigit() and not ch.isascii() for ch in text):
            raise UsageError(f"the {what} has a digit other than 0-9")
        if len(text) > MAX_DIGITS and text.isascii() and text.isdigit():
            raise UsageError(f"the {what} has more than {MAX_DIGITS} digits")
        raise UsageError(f"the {what} is not a number")
    return int(text)


def parse_range(start: str, end: str, step: str = "1") -> Range:
    """A range from its written parts; ``start`` may be empty (0), as in Ansible's ``[:9]``."""
    start = start or "0"
    if not _NUMBER.fullmatch(step) or int(step) == 0:
        raise UsageError("the step must be a positive integer")
    step_value = int(step)
    if len(start) == 1 and len(end) == 1 and start in _LETTER and end in _LETTER:
        if start > end:
            raise UsageError("the range goes backwards")
        return Range(ord(start), ord(end), step_value, letters=True)
    if not (start.isdigit() and end.isdigit()):
        if any(ch.isdigit() and not ch.isascii() for ch in start + end):
            raise UsageError("a range takes the digits 0-9 only")
        raise UsageError("expected a range of numbers [01:20] or of letters [a:c]")
    low, high = read_number(start, "start"), read_number(end, "end")
    width = len(start) if len(start) > 1 and start.startswith("0") else 0
    if width and len(end) != width:
        raise UsageError("a zero-padded range needs the same number of digits at both ends")
    if low > high:
        raise UsageError("the range goes backwards")
    return Range(low, high, step_value, width)


#: Ansible's ``[START:END]`` / ``[START:END:STEP]`` in a host name
_BRACKETS = re.compile(r"\[([^\]]*)\]")


def split_host_pattern(pattern: str) -> list[str | Range]:
    """``web[01:03].example.com`` -> ``["web", Range(1, 3, width=2), ".example.com"]``."""
    parts: list[str | Range] = []
    position = 0
    for match in _BRACKETS.finditer(pattern):
        pieces = match.group(1).split(":")
        if len(pieces) not in (2, 3):
            raise UsageError("expected a range [START:END] or [START:END:STEP]")
        parts.append(pattern[position : match.start()])
        parts.append(parse_range(*pieces))
        position = match.end()
    parts.append(pattern[position:])
    return parts


def pattern_count(parts: list[str | Range]) -> int:
    return math.prod(part.count for part in parts if isinstance(part, Range))


def expand_parts(parts: list[str | Range]) -> list[str]:
    """The names of a split pattern, in order (check :func:`pattern_count` first)."""
    choices = [(part,) if isinstance(part, str) else tuple(part.values()) for part in parts]
    return ["".join(combination) for combination in itertools.product(*choices)]


def expand_host_pattern(pattern: str, *, limit: int = MAX_HOSTS) -> list[str]:
    """Every host name of an Ansible host pattern, in order; at most ``limit`` of them.

    The count is computed before any name is made: a pattern over the limit is refused at once.
    """
    parts = split_host_pattern(pattern)
    count = pattern_count(parts)
    if count > limit:
        raise UsageError(f"gives {count} hosts, more than the {limit} allowed")
    return expand_parts(parts)
