"""Send one NMI to each host, exactly once, by the first method that can deliver it.

Plan (per host, sessions closed afterwards) → confirm (the caller asks the human) →
trigger (audit before, one request, audit after).  A method is abandoned for the next
one only when it certainly did not deliver (``NmiNotSent``); an ``OutcomeUnknown``
stops everything for that host: it may already be crashing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from oob.audit import AuditLog
from oob.drivers.base import BmcDriver
from oob.drivers.factory import make_driver
from oob.errors import NmiNotSent, OobError, OutcomeUnknown, SafetyRefusal
from oob.events import Emit, Event
from oob.inventory.checks import describe_shared, shared_bmcs
from oob.locks import host_lock
from oob.model import ActionResult, Host, NmiSupport, PowerState
from oob.runbook.common import Outcome, methods_for, run_per_host


@dataclass(frozen=True)
class NmiRequest:
    #: force one method ("redfish" or "ipmi") instead of the inventory's order
    via: str | None = None
    insecure: bool = False
    dry_run: bool = False
    assume_yes: bool = False
    parallel: int = 8
    connect_attempts: int = 3
    #: send even if the audit log shows an NMI to the host within ``repeat_window_s``
    force: bool = False
    repeat_window_s: float = 15 * 60
    #: also read the BMC's open sessions (Redfish SessionService) while planning: preflight
    sessions: bool = False


@dataclass(frozen=True)
class NmiPlan:
    host: Host
    method: str
    power: PowerState
    nmi: NmiSupport
    fallback_reason: str | None = None
    warnings: tuple[str, ...] = ()
    #: ``RedfishDriver.session_usage()`` when asked (``NmiRequest.sessions``): a SessionUsage,
    #: None when not read, or the error text when reading it failed
    sessions: Any = None

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


Confirm = Callable[[list[NmiPlan]], bool]


def _driver(host: Host, method: str, request: NmiRequest, emit: Emit) -> BmcDriver:
    return make_driver(
        host,
        method,
        insecure=request.insecure,
        connect_attempts=request.connect_attempts,
        on_retry=lambda message: emit(Event("warning", message, host.name, "retry")),
    )


def _describe_unsupported(method: str, error: OobError) -> str:
    # not str(error): that starts with the host name, which the record already carries
    text = error.message
    if error.bmc_message and error.bmc_message not in text:
        text = f"{text} (BMC says: {error.bmc_message})"
    return f"{method}: {text}"


def plan_host(host: Host, request: NmiRequest, emit: Emit) -> NmiPlan | Outcome:
    """Find the first method that can deliver an NMI to a powered-on host."""
    reasons: list[str] = []
    first_error: OobError | None = None
    sessions: Any = None
    for method in methods_for(host, request.via):
        try:
            with _driver(host, method, request, emit) as driver:
                power = driver.power_state()
                support = driver.nmi_support()
                warnings = tuple(driver.warnings)
                if request.sessions and sessions is None and hasattr(driver, "session_usage"):
                    sessions = _session_usage(driver)
        except NmiNotSent as exc:
            exc.for_host(host.name)
            first_error = first_error or exc
            reasons.append(_describe_unsupported(method, exc))
            continue
        except OobError as exc:
            return Outcome.from_error(host.name, "nmi", exc.for_host(host.name), via=method)
        if support.offered is False:
            offered = ", ".join(support.allowed) or "nothing"
            reason = f"{method}: NMI not supported by this BMC (it offers {offered})"
            first_error = first_error or _unsupported(host, reason)
            reasons.append(reason)
            continue
        fallback_reason = "; ".join(reasons) or None
        if fallback_reason:
            emit(Event("warning", f"falling back to {method}: {fallback_reason}", host.name, "fallback"))
        if support.offered is None:
            warnings += ("the BMC does not list the ResetType values it accepts; sending Nmi unchecked",)
        for warning in warnings:
            emit(Event("warning", warning, host.name, "warning"))
        if power is PowerState.OFF:
            refusal = SafetyRefusal("host power is Off: an NMI would do nothing; not sending", host=host.name)
            return Outcome.from_error(host.name, "nmi", refusal, via=method, warnings=warnings)
        return NmiPlan(host, method, power, support, fallback_reason, warnings, sessions)
    assert first_error is not None
    if len(reasons) > 1:
        first_error.message = f"{first_error.message}; " + "; ".join(reasons[1:])
    _mention_ilo_ipmi(host, first_error, reasons)
    # the message has every reason; the fallback reason is only why earlier methods were left
    return Outcome.from_error(host.name, "nmi", first_error, fallback_reason="; ".join(reasons[:-1]) or None)


def _session_usage(driver: BmcDriver) -> Any:
    try:
        return driver.session_usage()  # type: ignore[attr-defined]
    except OobError as exc:
        return f"cannot read the SessionService: {exc.message}"


def _unsupported(host: Host, reason: str) -> OobError:
    from oob.errors import NmiUnsupported

    return NmiUnsupported(reason, host=host.name)


#: the IPMI driver already says this when an iLO does not answer IPMI at all
ILO_IPMI_OFF = "HPE iLO ships with IPMI over LAN disabled"


def _mention_ilo_ipmi(host: Host, error: OobError, reasons: list[str]) -> None:
    # HPE iLO ships with IPMI over LAN disabled: the usual reason a fallback fails there
    tried_ipmi = any(r.startswith("ipmi:") for r in reasons)
    if host.bmc.kind == "ilo" and tried_ipmi and ILO_IPMI_OFF not in error.message:
        error.message += " (HPE iLO ships with IPMI over LAN disabled; enable it in iLO's network settings)"


def trigger_host(
    plan: NmiPlan, request: NmiRequest, emit: Emit, audit: AuditLog | None, *, locked: bool = False
) -> Outcome:
    """Send the planned NMI under the host's lock (``locked``: the caller holds it already)."""
    if audit is None or locked:
        return _trigger_locked(plan, request, emit, audit)
    try:
        with host_lock(audit.lock_dir, plan.host.name):
            return _trigger_locked(plan, request, emit, audit)
    except SafetyRefusal as exc:
        return Outcome.from_error(plan.host.name, "nmi", exc, via=plan.method)


def _trigger_locked(plan: NmiPlan, request: NmiRequest, emit: Emit, audit: AuditLog | None) -> Outcome:
    host = plan.host
    method = plan.method
    base = {"bmc": host.bmc.address, "via": method}
    try:
        with _driver(host, method, request, emit) as driver:
            power = driver.power_state()
            if power is PowerState.OFF:
                raise SafetyRefusal("host power went Off since planning; not sending", host=host.name)
            if audit:
                audit.record("nmi.sending", host.name, **base)
            sent_at = datetime.now(UTC).isoformat(timespec="seconds")
            emit(Event("progress", f"sending NMI via {method}", host.name, "nmi_sending", {"via": method}))
            try:
                result = driver.send_nmi()
            except OobError as exc:
                if audit:
                    audit.record("nmi.failed", host.name, error=exc.kind, message=exc.message, **base)
                raise
            if audit:
                audit.record("nmi.sent", host.name, status=result.status, bmc_message=result.bmc_message, **base)
    except OutcomeUnknown as exc:
        exc.for_host(host.name)
        emit(Event("error", f"NMI outcome unknown: {exc.message}; NOT resending", host.name, "nmi_outcome_unknown",
                   {"via": method}))
        return Outcome.from_error(
            host.name, "nmi", exc, via=method, fallback_reason=plan.fallback_reason, warnings=plan.warnings
        )
    except OobError as exc:
        exc.for_host(host.name)
        return Outcome.from_error(
            host.name, "nmi", exc, via=method, fallback_reason=plan.fallback_reason, warnings=plan.warnings
        )
    answer = f"HTTP {result.status}" if method == "redfish" else f"completion code 0x{result.status:02X}"
    data: dict[str, Any] = {"via": method, "at": sent_at, "answer": answer}
    if plan.fallback_reason:
        data["fallback_reason"] = plan.fallback_reason
    emit(Event("info", f"NMI sent via {method} ({answer})", host.name, "nmi_sent", data))
    return _sent(plan, result)


def _sent(plan: NmiPlan, result: ActionResult) -> Outcome:
    # an IPMI answer is a completion code, not an HTTP status
    status_key = "http_status" if plan.method == "redfish" else "completion_code"
    detail: dict[str, Any] = {status_key: result.status}
    if result.bmc_message:
        detail["bmc_message"] = result.bmc_message
    if result.task:
        detail["task"] = result.task
    return Outcome(
        host=plan.host.name,
        action="nmi",
        status="ok",
        via=plan.method,
        fallback_reason=plan.fallback_reason,
        warnings=plan.warnings,
        detail=detail,
    )


def recent_nmi_refusal(plan: NmiPlan, request: NmiRequest, audit: AuditLog | None) -> SafetyRefusal | None:
    """An NMI already went to this host a moment ago: a second one is almost surely an accident."""
    if audit is None or request.force:
        return None
    prior = audit.recent(plan.host.name, ("nmi.sending", "nmi.sent"), request.repeat_window_s)
    if prior is None:
        return None
    return SafetyRefusal(
        f"an NMI was already sent to this host at {prior.get('ts')} by {prior.get('user')} "
        f"(run {prior.get('run')}); use --force to send another",
        host=plan.host.name,
    )


def run_nmi(
    hosts: Sequence[Host],
    request: NmiRequest,
    *,
    confirm: Confirm,
    emit: Emit,
    audit: AuditLog | None,
) -> list[Outcome]:
    """Plan every host, ask once, then send each NMI exactly once."""
    outcomes: dict[str, Outcome] = {}
    for first, second in shared_bmcs(hosts):
        for host in (first, second):
            refusal = SafetyRefusal(describe_shared(first, second), host=host.name)
            outcomes[host.name] = Outcome.from_error(host.name, "nmi", refusal)
    to_plan = [h for h in hosts if h.name not in outcomes]
    planned = run_per_host(to_plan, lambda h: plan_host(h, request, emit), request.parallel)
    outcomes.update({p.host: p for p in planned if isinstance(p, Outcome)})
    plans: list[NmiPlan] = []
    for plan in (p for p in planned if isinstance(p, NmiPlan)):
        repeat = recent_nmi_refusal(plan, request, audit)
        if repeat is None:
            plans.append(plan)
        else:
            outcomes[plan.host.name] = Outcome.from_error(plan.host.name, "nmi", repeat, via=plan.method)
    if plans and request.dry_run:
        for plan in plans:
            outcomes[plan.host.name] = Outcome(
                host=plan.host.name,
                action="nmi",
                status="dry-run",
                via=plan.method,
                fallback_reason=plan.fallback_reason,
                warnings=plan.warnings,
                detail={"power": plan.power.value, "nmi": plan.nmi.to_dict(), "would_send": True},
            )
    elif plans:
        if not request.assume_yes and not confirm(plans):
            for plan in plans:
                refusal = SafetyRefusal("not confirmed; nothing was sent", host=plan.host.name)
                outcomes[plan.host.name] = Outcome.from_error(plan.host.name, "nmi", refusal, via=plan.method)
        else:
            if audit:
                audit.record("nmi.confirmed", None, hosts=[p.host.name for p in plans], yes=request.assume_yes)
            sent = run_per_host(
                [p.host for p in plans],
                lambda h: trigger_host(next(p for p in plans if p.host is h), request, emit, audit),
                request.parallel,
            )
            outcomes.update({o.host: o for o in sent})
    return [outcomes[h.name] for h in hosts]
