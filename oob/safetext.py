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
# (bidi marks, overrides and isolates, zero-width joiners, the BOM, the invisible tag
# characters), the line and paragraph separators some terminals break lines on, and lone
# surrogates (bytes that were not UTF-8): shown escaped, never sent.
_UNSAFE = re.compile(
    "["
    "\x00-\x1f\x7f-\x9f"  # C0, DEL, C1 (0x9b is CSI on a terminal that reads C1)
    "\u061c\u180e"  # Arabic letter mark, Mongolian vowel separator
    "\u200b-\u200f\u2028-\u202e\u2060-\u206f"  # zero-width, LRM/RLM, separators, embeddings, isolates
    "\ufeff\ufff9-\ufffb"  # BOM, interlinear annotation
    "\ud800-\udfff"  # lone surrogates (surrogateescape'd bytes)
    "\U000e0000-\U000e007f"  # tag characters
    "]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


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
