"""libvirt's errors, judged by their code (``virErrorNumber``), never by their text.

An action (inject-NMI, a power action) that failed with one of :data:`REFUSED_BEFORE_ACTING`
or :data:`UNSUPPORTED` was turned down by libvirt before it told the hypervisor anything:
the daemon checks the domain's state, the driver's support, the caller's rights and the
arguments first (qemuDomainInjectNMI: ``virDomainObjCheckActive`` then the monitor
command).  Every other failure of an action that was issued — an RPC error, a closed
connection, a system or internal error, a timeout waiting for the daemon — may have
happened after the hypervisor acted: its outcome is unknown, and it is never sent again.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from oob.safetext import printable

#: the daemon refused: the domain is not in a state for it, the caller may not, or the
#: request names nothing that exists
REFUSED_BEFORE_ACTING = (
    "VIR_ERR_OPERATION_INVALID",  # e.g. "domain is not running"
    "VIR_ERR_OPERATION_DENIED",  # a read-only connection
    "VIR_ERR_ACCESS_DENIED",  # polkit / access driver
    "VIR_ERR_NO_DOMAIN",
    "VIR_ERR_INVALID_DOMAIN",
    "VIR_ERR_INVALID_CONN",
    "VIR_ERR_INVALID_ARG",
    "VIR_ERR_AUTH_FAILED",
    "VIR_ERR_AUTH_CANCELLED",
    "VIR_ERR_AUTH_UNAVAILABLE",
)
#: the driver or the hypervisor does not offer it
UNSUPPORTED = (
    "VIR_ERR_NO_SUPPORT",
    "VIR_ERR_OPERATION_UNSUPPORTED",
    "VIR_ERR_ARGUMENT_UNSUPPORTED",
)
#: the connection's credentials were not accepted
AUTH = ("VIR_ERR_AUTH_FAILED", "VIR_ERR_AUTH_CANCELLED", "VIR_ERR_AUTH_UNAVAILABLE")

#: longest piece of libvirt's own text oob shows (it can carry a guest's name: hostile)
MAX_SAID = 300


def codes(libvirt: ModuleType, names: tuple[str, ...]) -> frozenset[int]:
    # names missing from an older binding are simply not in the set (so: outcome unknown)
    return frozenset(getattr(libvirt, name) for name in names if hasattr(libvirt, name))


def code_name(libvirt: ModuleType, code: int) -> str:
    for name in dir(libvirt):
        if name.startswith("VIR_ERR_") and getattr(libvirt, name) == code:
            return name
    return f"libvirt error {code}"


def said(text: object) -> str:
    """libvirt's (or a guest's) words, safe for a terminal and bounded."""
    shown = printable(str(text if text is not None else ""))
    return shown if len(shown) <= MAX_SAID else shown[: MAX_SAID - 1] + "…"


def error_code(error: Any) -> int | None:
    code = error.get_error_code() if hasattr(error, "get_error_code") else None
    return code if isinstance(code, int) else None


def error_words(error: Any) -> str:
    """libvirt's message of a ``libvirtError``, safe to show."""
    message = error.get_error_message() if hasattr(error, "get_error_message") else None
    return said(message or error)
