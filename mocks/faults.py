"""Faults a mock BMC can be told to show, and their thread-safe bookkeeping.

Faults are set through :meth:`mocks.fleet.Fleet.set_faults` or the control API as a JSON
object that is *merged* into the current set; a ``null``/``false``/``0`` value switches a
fault off.  Faults that act on "the next" request or Reset are consumed when they fire.

:class:`Faults` are the Redfish service's; :class:`HostFaults` belong to the simulated
machine behind the BMC (its kdump, its reboot) and act whichever protocol sent the NMI.
They stay until switched off: a host whose kdump is not armed stays so across reboots.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Literal

#: what the connection handler does after the application answered
AfterApply = Literal["hold", "reset"]


class FaultError(ValueError):
    """A fault request names unknown faults or gives a value of the wrong type."""


@dataclass(frozen=True)
class Faults:
    #: delay before every response, in milliseconds
    latency_ms: int = 0
    #: the next request(s) get this status with an ExtendedInfo error body
    http_status: int | None = None
    #: how many requests ``http_status`` applies to
    http_status_count: int = 1
    #: the next Reset is applied, then no response is ever sent (the connection is held)
    read_timeout_after_apply: bool = False
    #: the next Reset is applied, then the TCP connection is reset
    reset_after_apply: bool = False
    #: the next request: the connection is reset before anything is applied
    connection_reset: bool = False
    #: at most this many concurrent sessions; further logins get SessionLimitExceeded
    session_limit: int | None = None
    #: every login (session or HTTP Basic) fails with 401
    auth_failure: bool = False
    #: Nmi disappears from the advertised ResetType values and is rejected
    nmi_not_offered: bool = False
    #: the listener is closed: connection refused until ``down`` is false again
    down: bool = False
    #: the service has no SessionService: HTTP Basic authentication only
    no_session_service: bool = False

    def active(self) -> dict[str, object]:
        """Only the faults that differ from the defaults (for display)."""
        default = Faults()
        return {k: v for k, v in asdict(self).items() if getattr(default, k) != v}

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


FAULT_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Faults))
_BOOL = {
    "read_timeout_after_apply",
    "reset_after_apply",
    "connection_reset",
    "auth_failure",
    "nmi_not_offered",
    "down",
    "no_session_service",
}


def validate_changes(changes: Mapping[str, object]) -> dict[str, object]:
    """Check names and types; returns the normalised changes.  Raises :class:`FaultError`."""
    unknown = sorted(set(changes) - set(FAULT_NAMES))
    if unknown:
        raise FaultError(f"unknown fault(s): {', '.join(unknown)}; known: {', '.join(FAULT_NAMES)}")
    out: dict[str, object] = {}
    for name, value in changes.items():
        if name in _BOOL:
            if not isinstance(value, bool):
                raise FaultError(f"fault {name} takes true or false, not {value!r}")
            out[name] = value
        elif name == "latency_ms":
            out[name] = _int(name, value, minimum=0, allow_none_as=0)
        elif name == "http_status":
            status = _int(name, value, minimum=400, allow_none_as=None)
            if status is not None and status > 599:
                raise FaultError("fault http_status takes a status from 400 to 599")
            out[name] = status
        elif name == "http_status_count":
            out[name] = _int(name, value, minimum=1, allow_none_as=1)
        elif name == "session_limit":
            out[name] = _int(name, value, minimum=0, allow_none_as=None)
    return out


def _int(name: str, value: object, *, minimum: int, allow_none_as: int | None) -> int | None:
    if value is None or value is False:
        return allow_none_as
    if isinstance(value, bool) or not isinstance(value, int):
        raise FaultError(f"fault {name} takes an integer, not {value!r}")
    if value < minimum:
        raise FaultError(f"fault {name} must be at least {minimum}")
    return value


class FaultState:
    """The current faults of one BMC, read and consumed by concurrent request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults = Faults()

    @property
    def current(self) -> Faults:
        with self._lock:
            return self._faults

    def update(self, changes: Mapping[str, object]) -> Faults:
        normalised = validate_changes(changes)
        with self._lock:
            merged = replace(self._faults, **normalised)  # type: ignore[arg-type]
            if "http_status" in normalised and "http_status_count" not in normalised:
                merged = replace(merged, http_status_count=1)
            self._faults = merged
            return merged

    def clear(self) -> Faults:
        with self._lock:
            self._faults = Faults()
            return self._faults

    def take_connection_reset(self) -> bool:
        with self._lock:
            if not self._faults.connection_reset:
                return False
            self._faults = replace(self._faults, connection_reset=False)
            return True

    def take_http_status(self) -> int | None:
        with self._lock:
            status = self._faults.http_status
            if status is None:
                return None
            left = self._faults.http_status_count - 1
            if left > 0:
                self._faults = replace(self._faults, http_status_count=left)
            else:
                self._faults = replace(self._faults, http_status=None, http_status_count=1)
            return status

    def take_after_apply(self) -> AfterApply | None:
        """What to do with the connection once a Reset has been applied (consumed)."""
        with self._lock:
            if self._faults.read_timeout_after_apply:
                self._faults = replace(self._faults, read_timeout_after_apply=False)
                return "hold"
            if self._faults.reset_after_apply:
                self._faults = replace(self._faults, reset_after_apply=False)
                return "reset"
            return None


@dataclass(frozen=True)
class HostFaults:
    """What goes wrong on the machine itself; read when the NMI arrives (and at the reboot)."""

    #: no crash kernel loaded: the NMI panics the host, which reboots after the panic timeout
    #: and writes no dump (what oob must report as "no dump appeared")
    kdump_not_armed: bool = False
    #: kdump stops writing half-way through the vmcore and never finishes; the host stays in
    #: ``dumping`` until a power action
    dump_stall: bool = False
    #: the dump target fills up half-way: a partial vmcore marked incomplete, kdump's failure
    #: path, then the reboot
    disk_full: bool = False
    #: after the dump (or the panic timeout) the host goes down to reboot and never comes
    #: back until a power action through the BMC (what ``oob crash --recover`` is for)
    no_reboot: bool = False
    #: kdump's final action is ``poweroff`` (or ``halt``): after its dump the host powers
    #: off instead of rebooting, and stays off until a power action through the BMC
    poweroff_after_dump: bool = False
    #: ``kernel.unknown_nmi_panic=0``: the NMI is delivered and counted, the kernel says
    #: "Dazed and confused, but trying to continue", and the host stays as it was
    nmi_ignored: bool = False

    def active(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if v}

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


HOST_FAULT_NAMES: tuple[str, ...] = tuple(f.name for f in fields(HostFaults))


def merge_host_faults(current: HostFaults, changes: Mapping[str, object]) -> HostFaults:
    """``current`` with ``changes`` applied; FaultError for unknown names or non-booleans."""
    unknown = sorted(set(changes) - set(HOST_FAULT_NAMES))
    if unknown:
        raise FaultError(f"unknown host fault(s): {', '.join(unknown)}; known: {', '.join(HOST_FAULT_NAMES)}")
    for name, value in changes.items():
        if not isinstance(value, bool) and value is not None:
            raise FaultError(f"fault {name} takes true or false, not {value!r}")
    return replace(current, **{name: bool(value) for name, value in changes.items()})
