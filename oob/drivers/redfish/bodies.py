"""Reading a BMC's JSON with bounds: size capped while reading, depth checked before parsing.

``json.loads`` recurses once per nesting level, so a 100,000-deep body raises
RecursionError (and did, on the NMI reply, after the NMI was applied).  The depth is
measured first with a linear scan of the brackets outside strings; only a body within
:data:`MAX_DEPTH` reaches the parser.  Redfish documents are a few levels deep.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

#: largest response body oob reads (Redfish resources are kilobytes)
MAX_BODY_BYTES = 4 * 1024 * 1024
#: deepest JSON nesting oob parses
MAX_DEPTH = 64

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_DELTA = {"[": 1, "{": 1, "]": -1, "}": -1}


class BodyError(ValueError):
    """A response body oob will not use: too large, too deep, not JSON."""


def json_depth_exceeds(text: str, limit: int = MAX_DEPTH) -> bool:
    """True when the brackets outside strings nest deeper than ``limit``."""
    outside = _STRING.sub('""', text)
    depths = accumulate(_DELTA[m.group()] for m in _BRACKET.finditer(outside))
    return any(depth > limit for depth in depths)


def parse_json(data: bytes) -> Any:
    """The JSON value of a body, None when empty; BodyError when oob will not read it."""
    if len(data) > MAX_BODY_BYTES:
        raise BodyError(f"larger than {MAX_BODY_BYTES} bytes")
    if not data.strip():
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BodyError("not UTF-8 text") from None
    if json_depth_exceeds(text):
        raise BodyError(f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: belt and braces, the scan comes first
        raise BodyError("not JSON") from None
