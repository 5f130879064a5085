"""Send one NMI to each host, exactly once, by the first method that can deliver it.

Lock the hosts and read the audit log (:mod:`oob.runbook.guard`) → plan (per host; the
BMC session is kept open for the send) → confirm (the caller asks the human) → trigger
(the guard read again, audit before, one request, audit after), all under the same locks.

Under ``--yes`` nobody is asked, so each host is planned and sent in one go, without
waiting for the other hosts' plans (:func:`_plan_and_send_each`).

One session per host from plan to send: the send reuses the planning session while it
lasts (a session that expired during a long confirmation is replaced by a new login: a
read or a login never acted on anything), and reads the power state again unless the run
asked no question (``--yes``) and the plan's reading is younger than :data:`POWER_FRESH_S`.  A method
is abandoned for the next one only when it certainly did not deliver (``NotDelivered``,
:mod:`oob.runbook.methods`); an ``OutcomeUnknown`` stops everything for that host: it may
already be crashing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from oob.audit import AuditLog
from oob.defaults import DEFAULT_PARALLEL, MAX_WORKERS
from oob.drivers.base import BmcDriver
from oob.drivers.factory import make_driver
from oob.errors import (
    ActionUnsupported,
    AuditLogError,
    NotDelivered,
    OobError,
    OutcomeUnknown,
    SafetyRefusal,
    UsageError,
)
from oob.events import Emit, Event, EventKind, Level
from oob.inventory.checks import describe_shared, shared_bmcs
from oob.model import ActionResult, Host, NmiSupport, PowerState
from oob.runbook.common import Outcome, Status, internal_error, run_per_host
from oob.runbook.guard import lock_host, record_quietly, repeat_refusal
from oob.runbook.methods import DriverOptions, MethodsFailed, first_method


@dataclass(frozen=True)
class NmiRequest:
    #: force one method ("redfish" or "ipmi") instead of the inventory's order
    via: str | None = None
    insecure: bool = False
    dry_run: bool = False
    assume_yes: bool = False
    parallel: int = DEFAULT_PARALLEL
    connect_attempts: int = 3
    #: send even if the audit log shows an NMI to the host within ``repeat_window_s``
    allow_repeat: bool = False
    repeat_window_s: float = 15 * 60
    #: also read the BMC's open sessions (Redfish SessionService) while planning: preflight
    sessions: bool = False
    #: discover each BMC afresh instead of trusting the discovery cache
    refresh: bool = False
    #: processes that plan and send (``--workers``; more than one needs ``assume_yes``)
    workers: int = 1

    @property
    def driver(self) -> DriverOptions:
        return DriverOptions(self.via, self.insecure, self.connect_attempts, self.refresh)

    def __post_init__(self) -> None:
        self.driver  # noqa: B018 - validates ``via`` the one way it is validated
        if self.workers < 1 or self.workers > MAX_WORKERS:
            raise UsageError(f"--workers {self.workers}: expected 1 to {MAX_WORKERS}")
        if self.workers > 1 and not self.assume_yes:
            raise UsageError("--workers needs --yes: the question is asked of one process's plan")


#: under ``--yes``, a power reading younger than this is not read again before the send (it
#: follows the plan within moments); after a human's confirmation it is always read again
POWER_FRESH_S = 10.0


class HeldSession:
    """A driver planning left open for the send to reuse: taken at most once, closed once."""

    def __init__(self, driver: BmcDriver) -> None:
        self._driver: BmcDriver | None = driver
        self._lock = threading.Lock()

    def take(self) -> BmcDriver | None:
        """The open driver, for the one caller that will close it; None afterwards."""
        with self._lock:
            driver, self._driver = self._driver, None
        return driver

    def close(self) -> None:
        driver = self.take()
        if driver is not None:
            driver.close()


def close_sessions(plans: Iterable[CrashPlan], parallel: int) -> None:
    """Log out of every session planning left open that no send took (in parallel: a
    thousand sequential logouts would take minutes)."""
    held = [p.session for p in plans if p.session is not None]
    if not held:
        return
    with ThreadPoolExecutor(
        max_workers=max(1, min(parallel, len(held))), thread_name_prefix="oob-logout"
    ) as pool:
        list(pool.map(HeldSession.close, held))


@dataclass(frozen=True)
class CrashPlan:
    host: Host
    method: str
    power: PowerState
    nmi: NmiSupport
    fallback_reason: str | None = None
    warnings: tuple[str, ...] = ()
    #: ``RedfishDriver.session_usage()`` when asked (``NmiRequest.sessions``): a SessionUsage,
    #: None when not read, or the error text when reading it failed
    sessions: Any = None
    #: the planning session, open for the send (``plan_host(keep_open=True)``)
    session: HeldSession | None = field(default=None, compare=False, repr=False)
    #: when ``power`` was read (time.monotonic())
    power_read_at: float = field(default=0.0, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "host": self.host.name,
            "bmc": self.host.bmc.address,
            "via": self.method,
            "power": self.power.value,
            "nmi": self.nmi.to_dict(),
        }
        if self.fallback_reason:
            data["fallback_reason"] = self.fallback_reason
        if self.warnings:
            data["warnings"] = list(self.warnings)
        return data


Confirm = Callable[[list[CrashPlan]], bool]


def plan_host(host: Host, request: NmiRequest, emit: Emit, *, keep_open: bool = False) -> CrashPlan | Outcome:
    """Find the first method that can deliver an NMI to a powered-on host.  ``keep_open``:
    the plan holds the BMC session for :func:`trigger_host` (close it with
    :func:`close_sessions` when no send takes it)."""

    def look(driver: BmcDriver) -> tuple[PowerState, NmiSupport, Any]:
        power = driver.power_state()
        support = driver.nmi_support()
        if support.offered is False:
            offered = ", ".join(support.allowed) or "nothing"
            raise ActionUnsupported(f"NMI not supported by this BMC (it offers {offered})", host=host.name)
        sessions = _session_usage(driver) if request.sessions and hasattr(driver, "session_usage") else None
        return power, support, sessions

    try:
        found = first_method(host, request.driver, look, keep_open=keep_open)
    except MethodsFailed as failed:
        # the message has every reason; the fallback reason is only why earlier methods were left
        return Outcome.from_error(host.name, "nmi", failed.error, fallback_reason=failed.fallback_reason)
    except OobError as exc:
        return Outcome.from_error(host.name, "nmi", exc.for_host(host.name))
    read_at = time.monotonic()
    method = found.method
    power, support, sessions = found.result
    warnings = found.warnings
    held = HeldSession(found.driver) if found.driver is not None else None
    if found.fallback_reason:
        emit(
            Event(
                Level.WARNING,
                f"falling back to {method}: {found.fallback_reason}",
                host.name,
                EventKind.FALLBACK,
            )
        )
    if support.offered is None:
        warnings += ("the BMC does not list the ResetType values it accepts; sending Nmi unchecked",)
    for warning in warnings:
        emit(Event(Level.WARNING, warning, host.name, EventKind.WARNING))
    if power is PowerState.OFF:
        if held is not None:
            held.close()
        refusal = SafetyRefusal("host power is Off: an NMI would do nothing; not sending", host=host.name)
        return Outcome.from_error(host.name, "nmi", refusal, via=method, warnings=warnings)
    return CrashPlan(host, method, power, support, found.fallback_reason, warnings, sessions, held, read_at)


def _session_usage(driver: BmcDriver) -> Any:
    try:
        return driver.session_usage()  # type: ignore[attr-defined]
    except OobError as exc:
        return f"cannot read the SessionService: {exc.message}"


def trigger_host(
    plan: CrashPlan,
    request: NmiRequest,
    emit: Emit,
    audit: AuditLog | None,
    *,
    cancel: threading.Event | None = None,
) -> Outcome:
    """Send the planned NMI, exactly once. The caller holds the host's lock (see
    :mod:`oob.runbook.guard`): the repeat guard is read again here, under it, right
    before the ``nmi.sending`` record."""
    host = plan.host
    method = plan.method
    base = {"bmc": host.bmc.address, "machine": host.bmc.machine, "via": method}
    warnings = plan.warnings
    try:
        with ExitStack() as session:
            driver, power = _session_for_send(plan, request)
            session.callback(driver.close)
            if power is PowerState.OFF:
                raise SafetyRefusal("host power went Off since planning; not sending", host=host.name)
            if cancel is not None and cancel.is_set():
                raise SafetyRefusal("interrupted before the NMI; nothing was sent", host=host.name)
            repeat = repeat_refusal(audit, host, force=request.allow_repeat, window_s=request.repeat_window_s)
            if repeat is not None:
                raise repeat
            if audit:
                audit.record("nmi.sending", host.name, **base)  # AuditLogError: refuse, nothing sent
            sent_at = datetime.now(UTC).isoformat(timespec="seconds")
            emit(
                Event(
                    Level.PROGRESS,
                    f"sending NMI via {method}",
                    host.name,
                    EventKind.NMI_SENDING,
                    {"via": method},
                )
            )
            try:
                result = driver.send_nmi()
            except OobError as exc:
                warnings += record_quietly(
                    audit, "nmi.failed", host.name, error=exc.kind, message=exc.message, **base
                )
                raise
            except Exception as exc:
                # a bug met after the request may have left: it may have been applied
                unknown = OutcomeUnknown(
                    f"internal error while sending ({type(exc).__name__}: {exc}); "
                    "the NMI may have been applied",
                    host=host.name,
                )
                warnings += record_quietly(
                    audit, "nmi.failed", host.name, error=unknown.kind, message=unknown.message, **base
                )
                raise unknown from exc
            warnings += record_quietly(
                audit, "nmi.sent", host.name, status=result.status, bmc_message=result.bmc_message, **base
            )
    except OutcomeUnknown as exc:
        exc.for_host(host.name)
        said = (
            exc.message
            if "may have been applied" in exc.message
            else f"{exc.message}; it may have been applied"
        )
        emit(
            Event(
                Level.ERROR,
                f"NMI outcome unknown: {said} — NOT resending",
                host.name,
                EventKind.NMI_OUTCOME_UNKNOWN,
                {"via": method},
            )
        )
        return Outcome.from_error(
            host.name, "nmi", exc, via=method, fallback_reason=plan.fallback_reason, warnings=warnings
        )
    except OobError as exc:
        exc.for_host(host.name)
        return Outcome.from_error(
            host.name, "nmi", exc, via=method, fallback_reason=plan.fallback_reason, warnings=warnings
        )
    for warning in warnings[len(plan.warnings) :]:
        emit(Event(Level.WARNING, warning, host.name, EventKind.AUDIT_RECORD_MISSING))
    answer = result.describe_answer()
    data: dict[str, Any] = {"via": method, "at": sent_at, "answer": answer}
    if plan.fallback_reason:
        data["fallback_reason"] = plan.fallback_reason
    emit(Event(Level.INFO, f"NMI sent via {method} ({answer})", host.name, EventKind.NMI_SENT, data))
    return _sent(plan, result, warnings, sent_at)


def _session_for_send(plan: CrashPlan, request: NmiRequest) -> tuple[BmcDriver, PowerState]:
    """The open driver the send goes through and the power state to judge it by: the
    planning session and its reading while fresh, else a new session that reads it."""
    held = plan.session.take() if plan.session is not None else None
    if held is not None:
        # after a human's answer the power is read again, however quick the answer was
        if request.assume_yes and time.monotonic() - plan.power_read_at <= POWER_FRESH_S:
            return held, plan.power
        try:
            return held, held.power_state()
        except NotDelivered:
            # expired during the confirmation, or the connection went: a read acted on nothing
            held.close()
    driver = make_driver(
        plan.host,
        plan.method,
        insecure=request.insecure,
        connect_attempts=request.connect_attempts,
        refresh=request.refresh,
    )
    driver.open()
    try:
        return driver, driver.power_state()
    except BaseException:
        driver.close()
        raise


def _unrecorded(problem: str, host: str, via: str | None = None) -> Outcome:
    """A host left unsent because the run's own audit record could not be written."""
    return Outcome.from_error(host, "nmi", AuditLogError(f"{problem}; nothing was sent", host=host), via=via)


def _plan_and_send_each(
    hosts: Sequence[Host], request: NmiRequest, emit: Emit, audit: AuditLog | None, cancel: threading.Event
) -> dict[str, Outcome]:
    """Under ``--yes`` nobody is asked, so nothing waits for the other hosts: each host is
    planned and sent in one go, in one session, its NMI leaving as soon as its own plan is
    done (a thousand hosts do not wait for the slowest BMC's plan, and the power state read
    while planning is moments old when the NMI goes)."""
    if not hosts:
        return {}
    confirmed = record_quietly(audit, "nmi.confirmed", None, hosts=[h.name for h in hosts], yes=True)
    if confirmed:  # the run's own record failed: the per-host ones would too
        return {h.name: _unrecorded(confirmed[0], h.name) for h in hosts}

    def one(host: Host) -> Outcome:
        planned = plan_host(host, request, emit, keep_open=True)
        if isinstance(planned, Outcome):
            return planned
        try:
            if cancel.is_set():
                refusal = SafetyRefusal("interrupted before the NMI; nothing was sent", host=host.name)
                return Outcome.from_error(host.name, "nmi", refusal, via=planned.method)
            return trigger_host(planned, request, emit, audit, cancel=cancel)
        finally:
            if planned.session is not None:
                planned.session.close()

    sent = run_per_host(
        hosts,
        one,
        request.parallel,
        on_bug=lambda h, exc: Outcome.from_error(h.name, "nmi", internal_error(h, exc)),
    )
    return {o.host: o for o in sent}


def _announce_left_out(outcomes: Iterable[Outcome], emit: Emit) -> None:
    """Before the question: each host that will not get an NMI, and why."""
    for outcome in outcomes:
        if outcome.error is not None:
            emit(
                Event(
                    Level.WARNING,
                    f"left out: {outcome.error.message}",
                    outcome.host,
                    EventKind.REFUSED,
                    {"error": outcome.error.kind, "exit_code": outcome.exit_code},
                )
            )


def _sent(plan: CrashPlan, result: ActionResult, warnings: tuple[str, ...], sent_at: str) -> Outcome:
    # an IPMI answer is a completion code, not an HTTP status; libvirt's is words
    status_key = result.status_key
    detail: dict[str, Any] = {status_key: result.answer or result.status, "at": sent_at}
    if result.bmc_message:
        detail["bmc_message"] = result.bmc_message
    if result.task:
        detail["task"] = result.task
    return Outcome(
        host=plan.host.name,
        action="nmi",
        status=Status.OK,
        via=plan.method,
        fallback_reason=plan.fallback_reason,
        warnings=warnings,
        detail=detail,
    )


def run_nmi(
    hosts: Sequence[Host],
    request: NmiRequest,
    *,
    confirm: Confirm,
    emit: Emit,
    audit: AuditLog | None,
    cancel: threading.Event | None = None,
) -> list[Outcome]:
    """Lock, check the audit log, plan every host, ask once, then send each NMI exactly
    once (``cancel``: no NMI starts once it is set; those in flight finish)."""
    cancel = cancel or threading.Event()
    outcomes: dict[str, Outcome] = {}
    for first, second in shared_bmcs(hosts):
        for host in (first, second):
            refusal = SafetyRefusal(describe_shared(first, second), host=host.name)
            outcomes[host.name] = Outcome.from_error(host.name, "nmi", refusal)
    with ExitStack() as locks:
        # the cheap checks first, and under the lock: a host refused by the audit log is not asked
        for host in (h for h in hosts if h.name not in outcomes and audit is not None):
            assert audit is not None
            refused = lock_host(locks, audit, host) or repeat_refusal(
                audit, host, force=request.allow_repeat, window_s=request.repeat_window_s
            )
            if refused is not None:
                outcomes[host.name] = Outcome.from_error(host.name, "nmi", refused)
        to_plan = [h for h in hosts if h.name not in outcomes]
        if request.assume_yes and not request.dry_run:
            if request.workers > 1 and len(to_plan) > 1:
                from oob.runbook.workers import plan_and_send_in_workers

                workers = min(request.workers, len(to_plan))
                outcomes.update(plan_and_send_in_workers(to_plan, request, emit, audit, cancel, workers))
            else:
                outcomes.update(_plan_and_send_each(to_plan, request, emit, audit, cancel))
            to_plan = []
        planned = run_per_host(
            to_plan,
            lambda h: plan_host(h, request, emit, keep_open=not request.dry_run),
            request.parallel,
            on_bug=lambda h, exc: Outcome.from_error(h.name, "nmi", internal_error(h, exc)),
        )
        outcomes.update({p.host: p for p in planned if isinstance(p, Outcome)})
        plans = [p for p in planned if isinstance(p, CrashPlan)]
        # before the locks are let go: every session no send took is logged out
        locks.callback(close_sessions, plans, request.parallel)
        if plans and request.dry_run:
            for plan in plans:
                outcomes[plan.host.name] = Outcome(
                    host=plan.host.name,
                    action="nmi",
                    status=Status.DRY_RUN,
                    via=plan.method,
                    fallback_reason=plan.fallback_reason,
                    warnings=plan.warnings,
                    detail={"power": plan.power.value, "nmi": plan.nmi.to_dict(), "would_send": True},
                )
        elif plans:  # a human is asked (under --yes every host went through _plan_and_send_each)
            _announce_left_out(outcomes.values(), emit)
            if cancel.is_set() or not confirm(plans):
                why = "interrupted before the NMI" if cancel.is_set() else "not confirmed"
                for plan in plans:
                    refusal = SafetyRefusal(f"{why}; nothing was sent", host=plan.host.name)
                    outcomes[plan.host.name] = Outcome.from_error(
                        plan.host.name, "nmi", refusal, via=plan.method
                    )
            else:
                confirmed = record_quietly(
                    audit, "nmi.confirmed", None, hosts=[p.host.name for p in plans], yes=False
                )
                if confirmed:  # the run's own record failed: the per-host ones would too
                    for plan in plans:
                        outcomes[plan.host.name] = _unrecorded(confirmed[0], plan.host.name, plan.method)
                else:
                    by_host = {p.host.name: p for p in plans}
                    sent = run_per_host(
                        [p.host for p in plans],
                        lambda h: trigger_host(by_host[h.name], request, emit, audit, cancel=cancel),
                        request.parallel,
                        on_bug=lambda h, exc: Outcome.from_error(h.name, "nmi", internal_error(h, exc)),
                    )
                    outcomes.update({o.host: o for o in sent})
    if cancel.is_set() and audit is not None:
        record_quietly(audit, "run.interrupted", None, hosts={name: o.status for name, o in outcomes.items()})
    return [outcomes[h.name] for h in hosts]
