"""The kernel's ``crashkernel=`` parameter: every syntax, and the reservation for this RAM.

Syntaxes (Documentation/admin-guide/kdump/kdump.rst)::

    crashkernel=256M                    plain size
    crashkernel=256M@16M                size at an offset
    crashkernel=512M-2G:64M,2G-:128M    ranges: the size for the range the RAM falls in
    crashkernel=1G-4G:192M@16M          ranges with an offset
    crashkernel=256M,high               above 4 GiB (plus a default low part)
    crashkernel=72M,low                 the low part, with a ``,high`` one
    crashkernel=auto                    RHEL 6-8 only; gone from newer kernels

The kernel reads the last ``crashkernel=`` of each kind; ``,high`` and ``,low`` add up.
Pure functions, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50, "E": 1 << 60}
_SIZE = re.compile(r"(\d+)([KMGTPE]?)", re.IGNORECASE)


class CrashkernelError(ValueError):
    """A ``crashkernel=`` value the kernel would not accept either."""


def parse_size(text: str) -> int:
    """``128M`` -> 134217728 (K, M, G, T, P, E; no suffix: bytes)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise CrashkernelError(f"{text!r} is not a size (like 128M)")
    return int(match[1]) * _UNITS[match[2].upper()]


@dataclass(frozen=True)
class Range:
    start: int
    #: None: open-ended (``2G-``)
    end: int | None
    size: int

    def covers(self, ram: int) -> bool:
        return self.start <= ram and (self.end is None or ram < self.end)


@dataclass(frozen=True)
class Crashkernel:
    """One ``crashkernel=`` value."""

    text: str
    #: "size", "ranges", "high", "low", "auto"
    kind: str
    size: int | None = None
    offset: int | None = None
    ranges: tuple[Range, ...] = ()

    def reservation(self, ram: int | None) -> int | None:
        """Bytes reserved for a machine with ``ram`` bytes; None when it cannot be told."""
        if self.kind == "auto":
            return None
        if self.kind == "ranges":
            if ram is None:
                return None
            return next((r.size for r in self.ranges if r.covers(ram)), 0)
        return self.size


def parse_value(value: str) -> Crashkernel:
    """The part after ``crashkernel=``."""
    text = value.strip()
    if not text:
        raise CrashkernelError("crashkernel= is empty")
    if text.lower() == "auto":
        return Crashkernel(text, "auto")
    body, _, offset_text = text.partition("@")
    offset = parse_size(offset_text) if offset_text else None
    if ":" in body:
        ranges: list[Range] = []
        for part in body.split(","):
            span, sep, size = part.partition(":")
            start, dash, end = span.partition("-")
            if not sep or not dash:
                raise CrashkernelError(f"{text!r}: range {part!r} is not START-[END]:SIZE")
            item = Range(parse_size(start), parse_size(end) if end.strip() else None, parse_size(size))
            if item.end is not None and item.end <= item.start:
                raise CrashkernelError(f"{text!r}: range {span!r} ends before it starts")
            ranges.append(item)
        return Crashkernel(text, "ranges", offset=offset, ranges=tuple(ranges))
    size_text, comma, suffix = body.partition(",")
    suffix = suffix.strip().lower()
    if comma and suffix not in ("high", "low"):
        raise CrashkernelError(f"{text!r}: unknown suffix ',{suffix}' (expected ,high or ,low)")
    if comma and offset is not None:
        raise CrashkernelError(f"{text!r}: ,{suffix} takes no @offset")
    return Crashkernel(text, suffix or "size", size=parse_size(size_text), offset=offset)


def find_in_cmdline(cmdline: str) -> list[str]:
    """Every ``crashkernel=`` value on a kernel command line, in order."""
    return [word.split("=", 1)[1] for word in cmdline.split() if word.startswith("crashkernel=")]


@dataclass(frozen=True)
class Reservation:
    """What the command line asks the kernel to reserve on this machine."""

    values: tuple[Crashkernel, ...]
    #: bytes, None when it cannot be told (``auto``, ranges without knowing the RAM)
    size: int | None
    offset: int | None = None
    high: int | None = None
    low: int | None = None

    def describe(self) -> str:
        if self.size is None:
            return "size not known from the command line"
        text = human(self.size)
        if self.high is not None:
            text = f"{human(self.high)} high" + (f" + {human(self.low)} low" if self.low else "")
        if self.offset:
            text += f" at {human(self.offset)}"
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "values": [v.text for v in self.values],
            "bytes": self.size,
            "offset": self.offset,
            "high": self.high,
            "low": self.low,
        }


def reservation(cmdline: str, ram: int | None) -> Reservation | None:
    """The reservation the command line asks for; None without ``crashkernel=``.

    Raises CrashkernelError for a value the kernel would reject."""
    texts = find_in_cmdline(cmdline)
    if not texts:
        return None
    values = tuple(parse_value(t) for t in texts)
    # the last of each kind wins, as the kernel's parse_crashkernel() finds it
    last: dict[str, Crashkernel] = {}
    for value in values:
        key = value.kind if value.kind in ("high", "low") else "main"
        last[key] = value
    main = last.get("main")
    if main is not None:
        size = main.reservation(ram)
        return Reservation(values, size, offset=main.offset)
    high = last.get("high")
    low = last.get("low")
    if high is None:
        raise CrashkernelError(f"crashkernel={texts[-1]}: a ,low part alone reserves nothing without ,high")
    high_size = high.size or 0
    low_size = low.size if low is not None else None
    return Reservation(values, high_size + (low_size or 0), high=high_size, low=low_size)


def human(size: int) -> str:
    for unit, factor in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    for unit, factor in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size >= factor:
            return f"{size / factor:.1f}{unit}"
    return f"{size}B"
