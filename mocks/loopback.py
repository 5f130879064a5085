"""The mock fleet listens on loopback only; these helpers enforce it."""

from __future__ import annotations

import ipaddress


class BindError(ValueError):
    pass


def loopback_address(text: str) -> str:
    """``text`` as an IP address on 127.0.0.0/8 or ::1 (``localhost`` means 127.0.0.1)."""
    candidate = text.strip().strip("[]")
    if candidate == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        raise BindError(
            f"{text!r} is not an IP address; the mock fleet binds to 127.0.0.0/8 or ::1 only"
        ) from None
    if not address.is_loopback:
        raise BindError(f"{text} is not a loopback address; the mock fleet binds to 127.0.0.0/8 or ::1 only")
    return str(address)


def loopback_endpoint(text: str, default_port: int = 0) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6, or just ``HOST``) on loopback."""
    text = text.strip()
    host, port = text, default_port
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _port(port_text, text)
    return loopback_address(host), port


def _port(text: str, whole: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise BindError(f"{whole!r}: the port must be a number") from None
    if not 0 <= port <= 65535:
        raise BindError(f"{whole!r}: the port must be between 0 and 65535")
    return port


def url_host(address: str) -> str:
    """An address as it appears in a URL (IPv6 in brackets)."""
    return f"[{address}]" if ":" in address else address
