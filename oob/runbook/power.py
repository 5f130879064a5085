"""Power status and power actions, by the first method that can."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from oob.audit import AuditLog
from oob.defaults import DEFAULT_PARALLEL
from oob.errors import OobError, SafetyRefusal
from oob.events import Emit, Event, EventKind, Level
from oob.model import Host, PowerAction
from oob.runbook.common import Outcome, Status, internal_error, run_per_host
from oob.runbook.guard import lock_host, record_quietly
from oob.runbook.methods import DriverOptions, MethodsFailed, first_method

#: actions that interrupt a running host: confirmed first
DESTRUCTIVE = {PowerAction.OFF, PowerAction.SHUTDOWN, PowerAction.RESET, PowerAction.CYCLE}
POWER_CHOICES = ("status", *(a.value for a in PowerAction))


@dataclass(frozen=True)
class PowerRequest:
    #: "status" or a PowerAction value
    action: str
    driver: DriverOptions = field(default_factory=DriverOptions)
    assume_yes: bool = False
    dry_run: bool = False
    parallel: int = DEFAULT_PARALLEL


ConfirmPower = Callable[[list[Host], str], bool]


def _status(host: Host, request: PowerRequest, emit: Emit) -> Outcome:
    try:
        found = first_method(host, request.driver, lambda driver: driver.power_state())
    except MethodsFailed as failed:
        return Outcome.from_error(host.name, "power.status", failed.error)
    except OobError as exc:
        return Outcome.from_error(host.name, "power.status", exc.for_host(host.name))
    return Outcome(
        host.name,
        "power.status",
        Status.OK,
        via=found.method,
        fallback_reason=found.fallback_reason,
        warnings=found.warnings,
        detail={"power": found.result.value},
    )


def _act(
    host: Host, action: PowerAction, request: PowerRequest, emit: Emit, audit: AuditLog | None
) -> Outcome:
    name = f"power.{action.value}"
    missing: list[str] = []

    def work(driver: Any) -> Any:
        if audit:  # AuditLogError: nothing is sent
            audit.record(
                f"{name}.sending",
                host.name,
                bmc=host.bmc.address,
                machine=host.bmc.machine,
                via=driver.method,
            )
        try:
            result = driver.power(action)
        except OobError as exc:
            missing.extend(
                record_quietly(
                    audit, f"{name}.failed", host.name, via=driver.method, error=exc.kind, message=exc.message
                )
            )
            raise
        missing.extend(
            record_quietly(
                audit,
                f"{name}.done",
                host.name,
                via=driver.method,
                sent=list(result.sent),
                status=result.status,
            )
        )
        return result

    with ExitStack() as locks:
        refusal = lock_host(locks, audit, host) if audit is not None else None
        if refusal is not None:
            return Outcome.from_error(host.name, name, refusal)
        try:
            found = first_method(host, request.driver, work)
        except MethodsFailed as failed:
            return Outcome.from_error(host.name, name, failed.error, warnings=tuple(missing))
        except OobError as exc:
            return Outcome.from_error(host.name, name, exc.for_host(host.name), warnings=tuple(missing))
    method, result = found.method, found.result
    for warning in missing:
        emit(Event(Level.WARNING, warning, host.name, EventKind.AUDIT_RECORD_MISSING))
    emit(
        Event(
            Level.INFO,
            f"power {action.value} accepted ({', '.join(result.sent)})",
            host.name,
            EventKind(name),
        )
    )
    detail: dict[str, Any] = {"sent": list(result.sent), result.status_key: result.answer or result.status}
    if result.bmc_message:
        detail["bmc_message"] = result.bmc_message
    return Outcome(
        host.name,
        name,
        Status.OK,
        via=method,
        fallback_reason=found.fallback_reason,
        warnings=found.warnings + tuple(missing),
        detail=detail,
    )


def run_power(
    hosts: Sequence[Host],
    request: PowerRequest,
    *,
    confirm: ConfirmPower,
    emit: Emit,
    audit: AuditLog | None,
    cancel: threading.Event | None = None,
) -> list[Outcome]:
    """Read or change each host's power; ``cancel``: no action starts once it is set."""
    if request.action == "status":
        return run_per_host(
            hosts,
            lambda h: _status(h, request, emit),
            request.parallel,
            on_bug=lambda h, exc: Outcome.from_error(h.name, "power.status", internal_error(h, exc)),
        )
    action = PowerAction(request.action)
    name = f"power.{action.value}"
    if request.dry_run:
        return [Outcome(h.name, name, Status.DRY_RUN, detail={"would_send": action.value}) for h in hosts]
    cancel = cancel or threading.Event()
    if action in DESTRUCTIVE and not request.assume_yes and not confirm(list(hosts), action.value):
        return [
            Outcome.from_error(h.name, name, SafetyRefusal("not confirmed; nothing was sent", host=h.name))
            for h in hosts
        ]

    def act(host: Host) -> Outcome:
        if cancel.is_set():
            refusal = SafetyRefusal("interrupted before the power action; nothing was sent", host=host.name)
            return Outcome.from_error(host.name, name, refusal)
        return _act(host, action, request, emit, audit)

    return run_per_host(
        hosts,
        act,
        request.parallel,
        on_bug=lambda h, exc: Outcome.from_error(h.name, name, _bug_after_send(h, exc)),
    )


def _bug_after_send(host: Host, exc: Exception) -> OobError:
    # a bug met while the power request may have been on its way: it may have been applied
    from oob.errors import OutcomeUnknown

    return OutcomeUnknown(
        f"internal error ({type(exc).__name__}: {exc}); the power action may have been applied",
        host=host.name,
    )
