"""One origin per BMC: every URL oob requests is the inventory's origin plus a checked path.

python-redfish-library built URLs as ``base_url + path`` from whatever the BMC said, so a
``Links.Sessions`` of ``@other-host:443/redfish/v1/...`` moved the login (and its
password) to another machine.  Here the scheme, host and port always come from the
inventory; the BMC only ever contributes a *path*, and only one that passes
:func:`safe_path`:

* a relative path starting with ``/redfish/``, checked after percent-decoding (so
  ``%2F%2F`` or ``%2e%2e`` cannot smuggle what the plain form could not);
* no ``//``, ``.``/``..`` segments, ``\\``, ``@``, ``%`` left after decoding, query,
  whitespace or control characters, non-ASCII: only RFC 3986 path characters;
* an absolute URL is accepted only on the very same origin (scheme, host and port; no
  user info) and is reduced to its path; a fragment (``#/Fans/0``) is dropped, it is
  never sent anyway.

Anything else is a :class:`~oob.errors.BmcProtocolError` naming the BMC and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from oob.errors import BmcProtocolError, UsageError

#: longest URI oob follows (Redfish URIs are short; a huge one is hostile)
MAX_URI_LENGTH = 1024

_DEFAULT_PORTS = {"https": 443, "http": 80}
# RFC 3986 pchar minus "%" (decoding is done) and "@" (userinfo tricks), plus "/"
_PATH_CHARS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:/]*")
# what may appear in the raw value before decoding (adds "%", "#", "?" and "@", which
# are judged below): anything outside printable ASCII is refused outright
_RAW_CHARS = re.compile(r"[\x21-\x7e]*")


@dataclass(frozen=True)
class Origin:
    """Scheme, host and port of one BMC, from the inventory: where every request goes."""

    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, base_url: str) -> Origin:
        parts = urlsplit(base_url.strip())
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise UsageError(f"BMC address {base_url!r}: scheme must be https:// or http://")
        try:
            port = parts.port
        except ValueError as exc:
            raise UsageError(f"BMC address {base_url!r}: bad port") from exc
        host = (parts.hostname or "").lower()
        if not host or parts.username is not None or parts.password is not None:
            raise UsageError(f"BMC address {base_url!r}: expected scheme://host[:port]")
        return cls(scheme, host, port if port is not None else _DEFAULT_PORTS[scheme])

    @property
    def base(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def __str__(self) -> str:
        return self.base

    def url(self, path: str) -> str:
        """The URL of a path that :func:`safe_path` accepted."""
        return self.base + path

    def same_as(self, scheme: str, host: str | None, port: int | None) -> bool:
        scheme = scheme.lower()
        default = _DEFAULT_PORTS.get(scheme)
        return (
            scheme == self.scheme
            and (host or "").lower() == self.host
            and (port if port is not None else default) == self.port
        )


def safe_path(value: object, origin: Origin, *, field: str) -> str:
    """The path of a BMC-supplied URI that stays on ``origin``, or BmcProtocolError.

    ``field`` names where the URI came from (``Links.Sessions``, ``Location``,
    ``Actions.#ComputerSystem.Reset.target``...) for the error message.
    """

    def refuse(why: str) -> BmcProtocolError:
        shown = repr(value)[:120] if isinstance(value, str) else type(value).__name__
        return BmcProtocolError(
            f"the BMC at {origin} gave {field} = {shown}, which oob will not follow: {why}"
        )

    if not isinstance(value, str):
        raise refuse("not a string")
    if len(value) > MAX_URI_LENGTH:
        raise refuse(f"longer than {MAX_URI_LENGTH} characters")
    if not _RAW_CHARS.fullmatch(value):
        raise refuse("it holds whitespace, control or non-ASCII characters")
    if "\\" in value:
        raise refuse("it holds a backslash")
    text = value.split("#", 1)[0]
    if "?" in text:
        raise refuse("it carries a query")
    if text.startswith("//") or re.match(r"[A-Za-z][A-Za-z0-9+.\-]*:", text):
        parts = urlsplit(text)
        try:
            port = parts.port
        except ValueError:
            raise refuse("bad port") from None
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise refuse("it carries user information")
        if not parts.scheme or not origin.same_as(parts.scheme, parts.hostname, port):
            raise refuse(f"it points off the BMC's origin {origin}")
        text = parts.path
    try:
        decoded = unquote(text, errors="strict") if "%" in text else text
    except UnicodeDecodeError:
        raise refuse("its percent-encoding is not UTF-8") from None
    if not _PATH_CHARS.fullmatch(decoded):
        raise refuse("it holds characters a Redfish path never needs (%, @, whitespace, controls...)")
    if not decoded.startswith("/redfish/"):
        raise refuse("not a path under /redfish/")
    if "//" in decoded:
        raise refuse("it holds an empty path segment (//)")
    if any(segment in (".", "..") for segment in decoded.split("/")):
        raise refuse("it holds a . or .. segment")
    return decoded
