"""Text from a BMC, a host or a dump target, made safe for the operator's terminal.

A crashed host names its own dump directories and writes its own kernel log; a BMC
writes its own messages.  Any of them can carry ESC sequences that move the cursor,
rewrite the screen or set the window title.  Every such string passes through
:func:`printable` before a console renderer shows it; JSON output escapes control
characters by itself (``json.dumps``), so it needs nothing more.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the Unicode format characters that reorder or hide text
# (bidi overrides and isolates, zero-width joiners, the BOM), and lone surrogates (bytes that
# were not UTF-8): shown escaped, never sent.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, *, keep_newlines: bool = False) -> str:
    """``text`` with every control or format character shown as a visible escape.

    ``keep_newlines`` leaves ``\\n`` alone for multi-line blocks; a ``\\r`` is always
    escaped (it would let a later part of the line overwrite an earlier one).
    """
    value = text if isinstance(text, str) else str(text)
    if keep_newlines:
        return "\n".join(_UNSAFE.sub(_escape, line) for line in value.split("\n"))
    return _UNSAFE.sub(_escape, value)


def is_printable(text: str) -> bool:
    """True when ``text`` would pass :func:`printable` unchanged."""
    return _UNSAFE.search(text) is None
