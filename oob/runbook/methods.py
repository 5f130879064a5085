"""Try a host's configured methods (Redfish, then IPMI, ...) in order: the one place that
decides when moving on to the next method is safe.

A method is left for the next only when it certainly did nothing (``NotDelivered``).  Two
exceptions stop the search even then:

* an authentication failure: the next method would log in with the same credentials,
  and every failed login counts toward the BMC's lockout (iDRAC locks the user);
* a certificate failure: the BMC's identity did not check out, so going around it by
  another method would defeat the check;
* anything else (``OutcomeUnknown`` above all: the host may already be crashing).

Errors are never edited after they were raised: the error reported when every method
failed is a new one, built here with every method's reason and the hints that apply.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

from oob.drivers.base import BmcDriver
from oob.drivers.factory import make_driver
from oob.errors import BmcAuthError, NotDelivered, OobError, TlsError, UsageError
from oob.model import METHODS, Host, Method

_R = TypeVar("_R")

#: HPE iLO ships with IPMI over LAN disabled: the usual reason a fallback fails there
ILO_IPMI_OFF = "HPE iLO ships with IPMI over LAN disabled"


@dataclass(frozen=True)
class DriverOptions:
    #: one method instead of the inventory's order (``--via``)
    via: str | None = None
    insecure: bool = False
    connect_attempts: int = 3
    #: discover each BMC afresh instead of trusting the discovery cache (``--refresh``)
    refresh: bool = False

    def __post_init__(self) -> None:
        if self.via is not None and self.via not in METHODS:
            raise UsageError(f"--via must be one of {', '.join(METHODS)}, not '{self.via}'")


@dataclass(frozen=True)
class Attempt:
    """A method that was tried and certainly did nothing, and why."""

    method: str
    error: NotDelivered

    def describe(self) -> str:
        # not str(error): that starts with the host name, which the report already carries
        text = self.error.message
        if self.error.bmc_message and self.error.bmc_message not in text:
            text = f"{text} (BMC says: {self.error.bmc_message})"
        return f"{self.method}: {text}"


@dataclass(frozen=True)
class MethodRun(Generic[_R]):
    """What the first method that worked returned, and the methods left before it."""

    method: str
    result: _R
    attempts: tuple[Attempt, ...]
    warnings: tuple[str, ...]
    #: the driver, still open, when ``keep_open`` was asked: the caller closes it
    driver: BmcDriver | None = None

    @property
    def fallback_reason(self) -> str | None:
        return "; ".join(a.describe() for a in self.attempts) or None


class MethodsFailed(Exception):
    """Every method was tried (or the search stopped early); ``error`` is what to report."""

    def __init__(self, error: OobError, attempts: tuple[Attempt, ...]) -> None:
        super().__init__(error.message)
        self.error = error
        self.attempts = attempts

    @property
    def fallback_reason(self) -> str | None:
        """Why the methods before the last one were left."""
        return "; ".join(a.describe() for a in self.attempts[:-1]) or None


def methods_for(host: Host, via: str | None) -> tuple[Method, ...]:
    # ``via`` was checked against METHODS when the DriverOptions were made
    return (cast(Method, via),) if via else host.bmc.effective_methods


def first_method(
    host: Host,
    options: DriverOptions,
    work: Callable[[BmcDriver], _R],
    *,
    on_retry: Callable[[str], None] | None = None,
    keep_open: bool = False,
) -> MethodRun[_R]:
    """Run ``work(driver)`` with the first of the host's methods that certainly can.

    ``work`` raises an ``NotDelivered`` error to say "not this method" (e.g. NMI not
    offered); any other error ends the search and propagates as it is.  Raises
    :class:`MethodsFailed` when no method could.  ``keep_open``: the driver that worked is
    returned open (``MethodRun.driver``) for the caller to go on with and close.
    """
    methods = methods_for(host, options.via)
    attempts: list[Attempt] = []
    for index, method in enumerate(methods):
        try:
            driver = make_driver(
                host,
                method,
                insecure=options.insecure,
                connect_attempts=options.connect_attempts,
                on_retry=on_retry,
                refresh=options.refresh,
            )
            if not keep_open:
                with driver:
                    result = work(driver)
                    return MethodRun(method, result, tuple(attempts), tuple(driver.warnings))
            driver.open()
            try:
                result = work(driver)
            except BaseException:
                driver.close()
                raise
            return MethodRun(method, result, tuple(attempts), tuple(driver.warnings), driver)
        except NotDelivered as exc:
            attempts.append(Attempt(method, exc))
            if index + 1 < len(methods) and (stop := _stop_reason(exc, methods[index + 1 :])):
                raise MethodsFailed(_combined(host, attempts, stop), tuple(attempts)) from None
    raise MethodsFailed(_combined(host, attempts, None), tuple(attempts))


def _stop_reason(error: NotDelivered, rest: tuple[str, ...]) -> str | None:
    """Why the methods after this failure must not be tried, or None to go on."""
    skipped = ", ".join(rest)
    if isinstance(error, BmcAuthError):
        return (
            f"not trying {skipped} with the same credentials: each failed login counts toward the "
            f"BMC's lockout (use --via {rest[0]} to try it on purpose)"
        )
    if isinstance(error, TlsError):
        # a certificate that does not check out may be someone else's BMC: never a reason to go around it
        return (
            f"not trying {skipped}: a certificate problem is never a reason to use another method "
            f"(fix the trust, or use --via {rest[0]} on purpose)"
        )
    return None


def _combined(host: Host, attempts: list[Attempt], stop: str | None) -> OobError:
    """The error to report: the first method's (its class gives the exit code), a new
    instance carrying every method's reason and the hints that apply."""
    first = attempts[0].error
    error = copy.copy(first)
    # with several methods tried, every reason names its method
    parts = [a.describe() for a in attempts] if len(attempts) > 1 else [first.message]
    if stop:
        parts.append(stop)
    message = "; ".join(parts)
    tried_ipmi = any(a.method == "ipmi" for a in attempts)
    if host.bmc.kind == "ilo" and tried_ipmi and ILO_IPMI_OFF not in message:
        message += f" ({ILO_IPMI_OFF}: enable it in iLO (Security > Access Settings > IPMI/DCMI over LAN) or use Redfish)"
    error.message = message
    error.args = (message,)
    if error.host is None:
        error.host = host.name
    return error
