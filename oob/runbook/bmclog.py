"""``oob bmc log``: each BMC's own event log entries in a time window.

The library call is the driver's ``read_event_log(since, until)``
(:mod:`oob.signals.bmclog`); this runbook picks the method like every read (Redfish,
then IPMI where the inventory allows), emits one ``bmc_log_entries`` event per host and
returns the outcomes.  A BMC that offers no log is an ``ok`` outcome that says so; when
its Redfish service offers none and the inventory allows IPMI, the SEL is read instead.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from oob.defaults import DEFAULT_PARALLEL
from oob.drivers.base import BmcDriver
from oob.errors import OobError, UsageError
from oob.events import Emit, Event, EventKind, Level
from oob.model import Host
from oob.runbook.common import Outcome, Status, internal_error, run_per_host
from oob.runbook.methods import DriverOptions, MethodsFailed, first_method, methods_for
from oob.signals.bmclog import BmcLog, Window, summary

ACTION = "bmc.log"
_AGE = re.compile(r"(\d{1,6})\s*([smhd])", re.ASCII)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
TIME_HELP = "an ISO 8601 time (2026-11-30T05:00:00Z; no offset: this machine's local time) or an age: 90s, 30m, 2h, 1d"


def parse_when(value: str, option: str, *, now: dt.datetime | None = None) -> dt.datetime:
    """A ``--since``/``--until`` value as an aware UTC datetime; UsageError naming the option."""
    text = value.strip()
    now = now or dt.datetime.now(dt.UTC)
    age = _AGE.fullmatch(text)
    if age is not None:
        return now - dt.timedelta(seconds=int(age[1]) * _UNITS[age[2]])
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"{option} {value[:60]!r}: expected {TIME_HELP}") from None
    if when.tzinfo is None:
        when = when.astimezone()
    return when.astimezone(dt.UTC)


def make_window(since: str | None, until: str | None, *, default_since: str = "1h") -> Window:
    start = parse_when(since or default_since, "--since")
    end = parse_when(until, "--until") if until else None
    if end is not None and end < start:
        raise UsageError("--until is before --since")
    return Window(start, end)


@dataclass(frozen=True)
class LogRead:
    """One host's log as read, and how."""

    log: BmcLog
    method: str
    fallback_reason: str | None
    warnings: tuple[str, ...]


def read_log(host: Host, window: Window, options: DriverOptions) -> LogRead:
    """The host's BMC event log in ``window``: Redfish, then IPMI where the inventory allows
    (also when the Redfish service offers no log). Raises the method's error."""

    def read(driver: BmcDriver) -> BmcLog:
        return driver.read_event_log(window.since, window.until)

    try:
        found = first_method(host, options, read)
    except MethodsFailed as failed:
        raise failed.error from None
    log: BmcLog = found.result
    method, fallback, warnings = found.method, found.fallback_reason, found.warnings
    later = methods_for(host, options.via)
    if not log.offered and method in later and later.index(method) + 1 < len(later):
        # a Redfish service without LogServices: the same BMC's IPMI SEL may still tell
        other = later[later.index(method) + 1]
        try:
            second = first_method(host, replace(options, via=other), read)
        except (MethodsFailed, OobError):
            second = None
        if second is not None and second.result.offered:
            log, method, warnings = second.result, second.method, second.warnings
            fallback = f"{found.method} offers no event log"
    return LogRead(log, method, fallback, tuple(warnings))


def emit_log(host: Host, log: BmcLog, emit: Emit) -> None:
    data = log.to_dict()
    data.pop("host", None)
    emit(Event(Level.INFO, summary(log), host=host.name, kind=EventKind.BMC_LOG_ENTRIES, data=data))


def _read(host: Host, window: Window, options: DriverOptions, emit: Emit) -> Outcome:
    try:
        found = read_log(host, window, options)
    except OobError as exc:
        return Outcome.from_error(host.name, ACTION, exc.for_host(host.name))
    log, method, fallback, warnings = found.log, found.method, found.fallback_reason, found.warnings
    data = log.to_dict()
    data.pop("host", None)
    emit_log(host, log, emit)
    detail = dict(data)
    detail["summary"] = summary(log)
    return Outcome(
        host.name,
        ACTION,
        Status.OK,
        via=method,
        fallback_reason=fallback,
        warnings=tuple(warnings),
        detail=detail,
    )


def run_bmc_log(
    hosts: Sequence[Host],
    window: Window,
    options: DriverOptions,
    *,
    emit: Emit,
    parallel: int = DEFAULT_PARALLEL,
) -> list[Outcome]:
    return run_per_host(
        hosts,
        lambda h: _read(h, window, options, emit),
        parallel,
        on_bug=lambda h, exc: Outcome.from_error(h.name, ACTION, internal_error(h, exc)),
    )
