"""``oob crash``: from "web42 is hung" to "the dump is at ..., complete, panic: ...".

Per host, as an on-call engineer would do it by hand:

1. lock the host (one run per host at a time);
2. preflight: the BMC answers and authenticates, power is On, some configured method
   offers an NMI, the host looks hung (its probe does not answer), the dump target is
   readable, and a baseline of the dump directories already there is taken;
3. confirm (the caller asks the human), or stop here for ``--dry-run``;
4. send the NMI exactly once (audit before and after);
5. watch the dump target until the new dump is complete, stalled, failed, or late;
6. wait for the host to come back: its probe answers (``back``), or the BMC says it is
   off (``powered_off_after_dump``: kdump's final action was poweroff or halt; said at
   once, not after the reboot grace), or the grace passes (``not_back``);
7. optionally recover: power-cycle a host that never dumped, or did not come back; power
   on one that powered off after its dump;
8. report.

One host's failure never stops the others. ``cancel`` (set on Ctrl-C) stops new NMIs
and the watch; sessions are closed on every path and what was sent is still reported.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from oob import asyncbridge
from oob.audit import AuditLog
from oob.defaults import DEFAULT_PARALLEL
from oob.drivers.factory import resolve_password
from oob.dump.targets import Targets
from oob.dump.watcher import Baseline, DumpResult, DumpState, DumpWatcher, WatchOptions
from oob.errors import AuditLogError, OobError, SafetyRefusal, UsageError
from oob.events import Emit, Event, EventKind, Level
from oob.inventory.checks import describe_shared, shared_bmcs
from oob.model import Host, PowerAction, PowerState
from oob.probe import ProbeResult, probe_host
from oob.runbook.bmclog import emit_log, read_log
from oob.runbook.common import Outcome, Status, internal_error, run_per_host
from oob.runbook.guard import lock_host, record_quietly, repeat_refusal
from oob.runbook.methods import DriverOptions, MethodsFailed, first_method
from oob.runbook.nmi import CrashPlan, NmiRequest, close_sessions, plan_host, trigger_host
from oob.signals.bmclog import BmcLog, Window
from oob.signals.console import (
    ConsoleCapture,
    ConsoleResult,
    MilestoneKind,
    console_supported,
    default_console_dir,
    milestone_event,
    recording_event,
    saved_event,
    unavailable_event,
)
from oob.signals.fence_kdump import listener_for
from oob.ssh import SshOptions


@dataclass(frozen=True)
class CrashRequest:
    driver: DriverOptions = field(default_factory=DriverOptions)
    watch: WatchOptions = field(default_factory=WatchOptions)
    ssh: SshOptions | None = None
    assume_yes: bool = False
    dry_run: bool = False
    #: crash a host that looks healthy (or cannot be probed), and allow a repeat NMI
    force: bool = False
    #: crash a host the audit log says got an NMI or a SysRq crash within the last minutes
    allow_repeat: bool = False
    #: power-cycle a host that never dumped, or did not come back after its dump; power on
    #: one that powered off after its dump
    recover: bool = False
    #: seconds to wait for a host to answer its probe again after a complete dump
    reboot_grace_s: float = 300.0
    probe_timeout_s: float = 3.0
    parallel: int = DEFAULT_PARALLEL
    #: seconds between two reads of the BMC's power state while waiting for the host (each
    #: one is a login, and BMCs limit sessions and log every login: a reboot of several
    #: minutes costs a few dozen, not hundreds)
    power_read_every_s: float = 10.0
    #: True (``oob crash``): the host must look hung; False (``oob drill``): it must look
    #: healthy — in both cases ``force`` goes ahead anyway
    expect_hung: bool = True
    #: read each BMC's own event log around the NMI when the watch ends (``--no-bmc-log``: not)
    read_bmc_log: bool = True
    #: record the serial console over IPMI SOL from before the NMI until the watch ends
    #: (hosts whose BMC speaks IPMI; ``--no-console``: not), into ``console_dir``
    console: bool = True
    console_dir: Path | None = None
    #: ``--fence-kdump [ADDR:]PORT``: listen for fence_kdump's "kdump has started" there
    #: (None: only for hosts whose inventory says ``dump.fence_kdump = true``, on port 7410)
    fence_kdump: str | None = None


class CrashStatus(StrEnum):
    """How the crash runbook ended for one host."""

    COMPLETE = "complete"
    DRY_RUN = "dry-run"
    #: refused before anything was sent
    REFUSED = "refused"
    FAILED = "failed"
    #: the NMI request got no answer and no dump proved it arrived
    UNKNOWN = "unknown"
    STALLED = "stalled"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"


class AfterDump(StrEnum):
    """What became of the host after its complete dump."""

    #: its probe answers again
    BACK = "back"
    #: neither back nor off within ``--reboot-grace``
    NOT_BACK = "not_back"
    #: the BMC reports it off: kdump's final action was poweroff or halt
    POWERED_OFF = "powered_off_after_dump"


@dataclass(frozen=True)
class CrashOutcome:
    host: str
    bmc: str
    status: CrashStatus
    exit_code: int
    via: str | None = None
    fallback_reason: str | None = None
    nmi_at: str | None = None
    error: OobError | None = None
    dump: DumpResult | None = None
    probe: ProbeResult | None = None
    host_back: bool | None = None
    recovered: bool = False
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    #: seconds from the trigger until the host answered its probe again
    back_after_s: float | None = None
    #: what became of the host after its complete dump (None: not waited for)
    after_dump: AfterDump | None = None
    #: when its crash kernel's first fence_kdump message arrived (None: none heard, or
    #: nobody listened)
    kdump_started: str | None = None
    #: the BMC's own event log from shortly before the NMI (None: not read)
    bmc_log: BmcLog | None = None
    #: the serial console recorded over IPMI SOL (None: not recorded)
    console: ConsoleResult | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"host": self.host, "bmc": self.bmc, "status": self.status}
        if self.via:
            data["via"] = self.via
        if self.fallback_reason:
            data["fallback_reason"] = self.fallback_reason
        if self.nmi_at:
            data["nmi_at"] = self.nmi_at
        if self.dump is not None:
            data["dump"] = self.dump.to_dict()
        if self.probe is not None:
            data["probe"] = self.probe.to_dict()
        if self.host_back is not None:
            data["host_back"] = self.host_back
        if self.kdump_started is not None:
            data["kdump_started"] = self.kdump_started
        if self.console is not None:
            data["console"] = self.console.to_dict()
        if self.bmc_log is not None:
            log = self.bmc_log.to_dict()
            log.pop("host", None)
            data["bmc_log"] = log
        if self.after_dump is not None:
            data["after_dump"] = self.after_dump
        if self.back_after_s is not None:
            data["back_after_s"] = round(self.back_after_s, 3)
        if self.recovered:
            data["recovered"] = True
        if self.error is not None:
            data.update(self.error.report_fields())
        if self.warnings:
            data["warnings"] = list(self.warnings)
        if self.notes:
            data["notes"] = list(self.notes)
        data["exit_code"] = self.exit_code
        return data


@dataclass(frozen=True)
class CrashReport:
    outcomes: list[CrashOutcome]

    @property
    def exit_code(self) -> int:
        return max((o.exit_code for o in self.outcomes), default=0)

    def summary(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        return {"hosts": len(self.outcomes), "by_status": counts, "exit_code": self.exit_code}


ConfirmCrash = Callable[[list[CrashPlan]], bool]
#: crashes one planned host, exactly once: the BMC's NMI by default (``oob drill`` may
#: write to /proc/sysrq-trigger over SSH instead); emits its own sent / unknown events
Trigger = Callable[[CrashPlan, Emit, AuditLog | None], Outcome]
#: a last look at a host before it may be crashed (``oob drill``: is kdump ready?); returns
#: the refusal, or None to go ahead
Gate = Callable[[Host, CrashPlan], OobError | None]


@dataclass
class _HostRun:
    """One host's way through the runbook (mutable, private)."""

    host: Host
    plan: CrashPlan | None = None
    probe: ProbeResult | None = None
    outcome: CrashOutcome | None = None
    nmi: Outcome | None = None
    nmi_at: str | None = None
    nmi_monotonic: float | None = None
    notes: list[str] = field(default_factory=list)
    #: its ``refused`` event was emitted
    announced: bool = False
    #: fence_kdump: when its crash kernel said "kdump has started"; whether it was listened for
    kdump_started: str | None = None
    fence_listened: bool = False
    #: its serial console, recording from before the NMI; what it recorded
    console: ConsoleCapture | None = None
    console_result: ConsoleResult | None = None

    def settle(self, status: CrashStatus, error: OobError, **kwargs: Any) -> None:
        self.outcome = CrashOutcome(
            host=self.host.name,
            bmc=self.host.bmc.address,
            status=status,
            exit_code=error.exit_code,
            error=error,
            probe=self.probe,
            **kwargs,
        )


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _nmi_request(request: CrashRequest) -> NmiRequest:
    return NmiRequest(
        via=request.driver.via,
        insecure=request.driver.insecure,
        dry_run=request.dry_run,
        assume_yes=request.assume_yes,
        parallel=request.parallel,
        connect_attempts=request.driver.connect_attempts,
        allow_repeat=request.allow_repeat,
        refresh=request.driver.refresh,
    )


def _preflight(run: _HostRun, request: CrashRequest, emit: Emit, gate: Gate | None = None) -> None:
    host = run.host
    if not host.dump.target:
        run.settle(
            CrashStatus.REFUSED,
            UsageError(f"host '{host.name}' has no dump.target in the inventory", host=host.name),
        )
        return
    # the session is kept for the send (one login per host), unless nothing will be sent
    planned = plan_host(host, _nmi_request(request), emit, keep_open=not request.dry_run)
    if isinstance(planned, Outcome):
        assert planned.error is not None
        run.settle(
            CrashStatus.REFUSED, planned.error, via=planned.via, fallback_reason=planned.fallback_reason
        )
        return
    run.plan = planned
    run.probe = probe_host(host, request.probe_timeout_s)
    if request.expect_hung and run.probe.alive is not False:
        why = (
            f"host looks healthy: {run.probe.detail}"
            if run.probe.alive
            else f"cannot tell whether the host is hung: {run.probe.detail}"
        )
    elif not request.expect_hung and run.probe.alive is not True:
        why = (
            f"host does not look healthy: {run.probe.detail}"
            if run.probe.alive is False
            else f"cannot tell whether the host is healthy: {run.probe.detail}"
        )
    else:
        why = ""
    if why:
        if not request.force:
            run.settle(
                CrashStatus.REFUSED, SafetyRefusal(f"{why}; use --force to crash it anyway", host=host.name)
            )
            return
        emit(Event(Level.WARNING, f"{why}; crashing it anyway (--force)", host.name, EventKind.WARNING))
    if gate is not None:
        refusal = gate(host, planned)
        if refusal is not None:
            run.settle(CrashStatus.REFUSED, refusal.for_host(host.name))


async def _baselines(runs: list[_HostRun], targets: Targets, emit: Emit) -> Baseline | None:
    """One baseline per dump target, so an unreadable target refuses only its own hosts."""
    by_target: dict[str, list[_HostRun]] = {}
    for run in runs:
        by_target.setdefault(str(run.host.dump.target), []).append(run)
    names: dict[str, frozenset[str]] = {}
    taken_at = time.time()
    for group in by_target.values():
        try:
            watcher = DumpWatcher([r.host for r in group], targets=targets)
            baseline = await watcher.take_baseline()
        except OobError as exc:
            for run in group:
                run.settle(
                    CrashStatus.REFUSED,
                    type(exc)(f"dump target not readable: {exc.message}", host=run.host.name),
                )
            continue
        names.update(baseline.names)
        taken_at = min(taken_at, baseline.taken_at)
    if not names:
        return None
    return Baseline(names=names, taken_at=taken_at)


def _preflight_event(run: _HostRun, emit: Emit) -> None:
    assert run.plan is not None and run.probe is not None
    data = run.plan.to_dict()
    data.pop("host", None)
    data["probe"] = run.probe.to_dict()
    data["dump_target"] = run.host.dump.target
    emit(
        Event(
            Level.INFO,
            f"preflight ok: via {run.plan.method}, power {run.plan.power.value}, {run.probe.detail}",
            run.host.name,
            EventKind.PREFLIGHT,
            data,
        )
    )


def _power_cycle(run: _HostRun, request: CrashRequest, emit: Emit, audit: AuditLog | None, why: str) -> bool:
    return _recover_power(run, request, emit, audit, why, PowerAction.CYCLE)


def _power_on(run: _HostRun, request: CrashRequest, emit: Emit, audit: AuditLog | None, why: str) -> bool:
    return _recover_power(run, request, emit, audit, why, PowerAction.ON)


def _recover_power(
    run: _HostRun, request: CrashRequest, emit: Emit, audit: AuditLog | None, why: str, action: PowerAction
) -> bool:
    """``--recover``: one power action through the BMC, audited before and after
    (``recover.cycle.*``, ``recover.on.*``)."""
    host = run.host
    doing, done = (
        ("power-cycling", "power-cycled") if action is PowerAction.CYCLE else ("powering on", "powered on")
    )
    emit(
        Event(
            Level.WARNING,
            f"{doing} through the BMC: {why}",
            host.name,
            EventKind.RECOVERING,
            {"action": action.value, "reason": why},
        )
    )
    record = f"recover.{action.value}"
    try:
        if audit:
            audit.record(
                f"{record}.sending", host.name, bmc=host.bmc.address, machine=host.bmc.machine, reason=why
            )
        applied = first_method(host, request.driver, lambda d: d.power(action))
    except (OobError, MethodsFailed) as exc:
        error = exc.error if isinstance(exc, MethodsFailed) else exc
        record_quietly(audit, f"{record}.failed", host.name, error=error.kind, message=error.message)
        emit(Event(Level.ERROR, f"power {action.value} failed: {error}", host.name, EventKind.FAILED))
        return False
    method, result = applied.method, applied.result
    for missing in record_quietly(audit, f"{record}.done", host.name, via=method, sent=list(result.sent)):
        emit(Event(Level.WARNING, missing, host.name, EventKind.AUDIT_RECORD_MISSING))
    emit(
        Event(
            Level.INFO,
            f"{done} via {method} ({', '.join(result.sent)})",
            host.name,
            EventKind.RECOVERED,
            {"action": action.value, "via": method, "sent": list(result.sent), "reason": why},
        )
    )
    return True


def _wait_back(
    host: Host,
    request: CrashRequest,
    cancel: threading.Event,
    emit: Emit,
    *,
    deadline: float | None = None,
    read_power: bool = True,
) -> AfterDump:
    """Polls the probe until it answers (``BACK``), the BMC says the host is off
    (``POWERED_OFF``), ``deadline`` (default: ``reboot_grace_s`` from now) passes or
    ``cancel`` (``NOT_BACK``).

    The power state is read only while the probe is silent, at most every
    ``power_read_every_s``, read-only; after one failed read it is not read again (a
    login that failed for its credentials counts toward the BMC's lockout)."""
    if deadline is None:
        deadline = time.monotonic() + request.reboot_grace_s
    # one connection attempt per read: the next read is the retry, and the wait's deadline
    # is not held up by a BMC that does not answer
    reads = replace(request.driver, connect_attempts=1)
    next_read = time.monotonic()
    while not cancel.is_set():
        if probe_host(host, min(request.probe_timeout_s, 2.0)).alive:
            return AfterDump.BACK
        if read_power and time.monotonic() >= next_read and not cancel.is_set():
            next_read = time.monotonic() + request.power_read_every_s
            try:
                state = first_method(host, reads, lambda d: d.power_state()).result
            except (OobError, MethodsFailed) as exc:
                error = exc.error if isinstance(exc, MethodsFailed) else exc
                read_power = False
                emit(
                    Event(
                        Level.WARNING,
                        f"cannot read the power state ({error.message}); waiting for the probe only",
                        host.name,
                        EventKind.WARNING,
                    )
                )
            else:
                if state is PowerState.OFF:
                    return AfterDump.POWERED_OFF
        if time.monotonic() >= deadline:
            return AfterDump.NOT_BACK
        cancel.wait(max(0.0, min(2.0, max(0.1, request.reboot_grace_s / 20), deadline - time.monotonic())))
    return AfterDump.NOT_BACK


def _after_dump(
    run: _HostRun, request: CrashRequest, emit: Emit, audit: AuditLog | None, cancel: threading.Event
) -> tuple[AfterDump, bool, bool, list[str]]:
    """Waits for the host after its complete dump; recovers it if asked. Returns what
    became of it, whether it is back (by itself, or powered on by ``--recover``), whether
    a recovery was accepted, and notes for the report."""
    host = run.host
    deadline = time.monotonic() + request.reboot_grace_s
    after = _wait_back(host, request, cancel, emit, deadline=deadline)
    notes: list[str] = []
    recovered = False
    if after is AfterDump.POWERED_OFF:
        emit(
            Event(
                Level.WARNING,
                "the BMC reports the host off after its dump (kdump's final action poweroff or halt?)",
                host.name,
                EventKind.POWERED_OFF_AFTER_DUMP,
                {"power": PowerState.OFF.value},
            )
        )
        if request.recover and not cancel.is_set():
            recovered = _power_on(run, request, emit, audit, "the host powered off after its dump")
            # what is left of the grace, for it to boot; the BMC is not asked again
            if recovered and (
                _wait_back(host, request, cancel, emit, deadline=deadline, read_power=False) is AfterDump.BACK
            ):
                emit(
                    Event(
                        Level.INFO, "host is back (its probe answers again)", host.name, EventKind.HOST_BACK
                    )
                )
                return after, True, recovered, notes
            if recovered:
                notes.append("powered on after its dump (--recover); not back within --reboot-grace")
        else:
            notes.append(
                f"the host powered off after its dump: power it on (oob power {host.name} on), or use --recover"
            )
        return after, False, recovered, notes
    if after is AfterDump.BACK:
        emit(Event(Level.INFO, "host is back (its probe answers again)", host.name, EventKind.HOST_BACK))
        return after, True, recovered, notes
    emit(
        Event(
            Level.WARNING,
            f"host not back within {request.reboot_grace_s:g} s",
            host.name,
            EventKind.HOST_NOT_BACK,
        )
    )
    if request.recover and not cancel.is_set():
        recovered = _power_cycle(run, request, emit, audit, "dump complete but the host did not come back")
    return after, False, recovered, notes


def _open_console(run: _HostRun, request: CrashRequest, emit: Emit, audit: AuditLog | None) -> None:
    """Start recording the host's serial console before its NMI; never a reason not to send it.
    Saved in ``console_dir``, else ``consoles/`` beside this run's audit log."""
    if not request.console or not console_supported(run.host):
        return
    try:
        password = resolve_password(run.host)
    except OobError:
        return  # the NMI will say what is wrong with the credentials
    capture = ConsoleCapture(
        run.host,
        password,
        directory=request.console_dir
        or (audit.path.parent / "consoles" if audit is not None else default_console_dir()),
        on_milestone=lambda milestone: emit(milestone_event(run.host.name, milestone)),
    )
    emit(recording_event(capture) if capture.start() else unavailable_event(capture))
    run.console = capture


def _close_console(run: _HostRun, result: DumpResult | None, emit: Emit) -> None:
    """Stop recording when the watch ends; kdump's last lines may come just after its files."""
    capture = run.console
    if capture is None or run.console_result is not None:
        return
    complete = result is not None and result.ok
    if complete:
        capture.wait_for(MilestoneKind.KDUMP_SAVED, 3.0)
    run.console_result = capture.stop()
    if run.console_result.path is not None:
        emit(saved_event(run.console_result, show_lines=None if complete else True))


def _bmc_log(run: _HostRun, request: CrashRequest, emit: Emit, notes: list[str]) -> BmcLog | None:
    """The BMC's event log from shortly before the NMI to now: the NMI's own entry, and any
    hardware error that explains what the kernel log cannot. Read-only; a failure is a note."""
    if not request.read_bmc_log or run.nmi_at is None or request.dry_run:
        return None
    try:
        nmi_at = datetime.fromisoformat(run.nmi_at)
        found = read_log(run.host, Window.around_nmi(nmi_at), request.driver)
    except (OobError, ValueError) as exc:
        notes.append(f"BMC event log not read: {exc.message if isinstance(exc, OobError) else exc}")
        return None
    emit_log(run.host, found.log, emit)
    return found.log


def _crash_status(result: DumpResult | None) -> CrashStatus:
    """A watch that did not end complete, as the host's status (a state that is not final
    here means the watch ended early: its deadline)."""
    if result is None:
        return CrashStatus.TIMEOUT
    try:
        return CrashStatus(result.state.value)
    except ValueError:
        return CrashStatus.TIMEOUT


def _conclude(
    run: _HostRun,
    result: DumpResult | None,
    request: CrashRequest,
    emit: Emit,
    audit: AuditLog | None,
    cancel: threading.Event,
) -> None:
    nmi = run.nmi
    assert nmi is not None
    host = run.host
    host_back: bool | None = None
    back_after_s: float | None = None
    after_dump: AfterDump | None = None
    recovered = False
    notes = list(run.notes)
    if result is not None and result.ok:
        if nmi.status == Status.UNKNOWN:
            notes.append("the NMI request got no answer, but the dump proves it was delivered")
        if request.reboot_grace_s > 0 and not cancel.is_set():
            after_dump, host_back, recovered, more = _after_dump(run, request, emit, audit, cancel)
            notes.extend(more)
            if host_back and run.nmi_monotonic is not None:
                back_after_s = time.monotonic() - run.nmi_monotonic
        status, code = CrashStatus.COMPLETE, 0
    else:
        if request.recover and not cancel.is_set():
            stalled = result is not None and result.state is DumpState.STALLED
            why = "the dump stalled" if stalled else "no complete dump by the deadline"
            recovered = _power_cycle(run, request, emit, audit, why)
        if nmi.status == Status.UNKNOWN:
            status, code = CrashStatus.UNKNOWN, nmi.exit_code
        else:
            status = _crash_status(result)
            code = 130 if result is not None and result.state is DumpState.INTERRUPTED else 5
            if result is not None and result.state is DumpState.TIMEOUT and result.directory is None:
                if run.kdump_started is not None:
                    notes.append(
                        f"the crash kernel said kdump has started ({run.kdump_started}) but no dump "
                        "appeared: is the dump target mounted and writable there?"
                    )
                elif run.fence_listened:
                    notes.append(
                        "no dump appeared and no fence_kdump message came: the crash kernel did not boot, "
                        "or kdump.conf does not name this machine in fence_kdump_nodes"
                    )
                else:
                    notes.append(
                        "no dump appeared; is kdump armed (kexec_crash_loaded) and kernel.unknown_nmi_panic=1?"
                    )
        console = run.console_result
        if console is not None and console.problem:
            notes.append(f"serial console: {console.problem} (last lines in {console.path})")
        if cancel.is_set():
            notes.append("interrupted before the dump was complete")
            if run.nmi_at and nmi.status != Status.UNKNOWN:
                notes.append(f"to follow it again: oob watch {host.name} --since {run.nmi_at}")
    run.outcome = CrashOutcome(
        host=host.name,
        bmc=host.bmc.address,
        status=status,
        exit_code=code,
        via=nmi.via,
        fallback_reason=nmi.fallback_reason,
        nmi_at=run.nmi_at,
        error=nmi.error,
        dump=result,
        probe=run.probe,
        host_back=host_back,
        recovered=recovered,
        warnings=nmi.warnings,
        notes=tuple(notes),
        back_after_s=back_after_s,
        after_dump=after_dump,
        kdump_started=run.kdump_started,
        bmc_log=_bmc_log(run, request, emit, notes) if not cancel.is_set() else None,
        console=run.console_result,
    )
    if status != CrashStatus.COMPLETE:
        emit(
            Event(
                Level.ERROR,
                "; ".join([f"no complete dump ({status})", *notes]),
                host.name,
                EventKind.FAILED,
                {"status": status},
            )
        )


def run_crash(
    hosts: Sequence[Host],
    request: CrashRequest,
    *,
    confirm: ConfirmCrash,
    emit: Emit,
    audit: AuditLog | None,
    cancel: threading.Event | None = None,
    trigger: Trigger | None = None,
    gate: Gate | None = None,
) -> CrashReport:
    """The runbook for ``hosts``; ``trigger`` replaces the BMC's NMI, ``gate`` adds a last
    per-host check before the confirmation (both for ``oob drill``)."""
    cancel = cancel or threading.Event()
    runs = [_HostRun(host) for host in hosts]
    by_name = {run.host.name: run for run in runs}
    for first, second in shared_bmcs(hosts):
        for host in (first, second):
            by_name[host.name].settle(
                CrashStatus.REFUSED, SafetyRefusal(describe_shared(first, second), host=host.name)
            )
    # the SSH connections opened for the baseline are the ones the watch uses: both run
    # on the bridge's one loop (oob.asyncbridge)
    targets = Targets(request.ssh)
    with ExitStack() as locks:
        try:
            if audit is not None:
                # lock, then the audit log: a host refused by it is never probed nor asked
                for run in runs:
                    if run.outcome is None:
                        refusal = lock_host(locks, audit, run.host, _stale(emit)) or repeat_refusal(
                            audit,
                            run.host,
                            force=request.allow_repeat,
                            window_s=_nmi_request(request).repeat_window_s,
                        )
                        if refusal is not None:
                            run.settle(CrashStatus.REFUSED, refusal)
            _crash(runs, request, confirm, emit, audit, cancel, targets, trigger, gate)
        finally:
            asyncbridge.run(targets.close())
    _announce_refusals(runs, emit)
    report = CrashReport([run.outcome for run in runs if run.outcome is not None])
    if audit is not None:
        for outcome in report.outcomes:
            _audit_outcome(audit, outcome)
    emit(Event(Level.INFO, "summary", None, EventKind.SUMMARY, report.summary()))
    return report


def _announce_refusals(runs: list[_HostRun], emit: Emit) -> None:
    """A ``refused`` event for each host refused so far and not yet announced: before the
    confirmation question (so the engineer sees who is left out, and why), and at the end."""
    for run in runs:
        outcome = run.outcome
        if outcome is None or outcome.status != CrashStatus.REFUSED or run.announced:
            continue
        run.announced = True
        emit(
            Event(
                Level.ERROR,
                str(outcome.error.message if outcome.error else "refused"),
                outcome.host,
                EventKind.REFUSED,
                {"error": outcome.error.kind if outcome.error else None, "exit_code": outcome.exit_code},
            )
        )


def _audit_outcome(audit: AuditLog, outcome: CrashOutcome) -> None:
    """Each host's end of the story, flushed like every record (never a secret in it)."""
    fields: dict[str, Any] = {"bmc": outcome.bmc, "status": outcome.status, "exit_code": outcome.exit_code}
    if outcome.via:
        fields["via"] = outcome.via
    if outcome.error is not None:
        fields["error"] = outcome.error.kind
        fields["message"] = outcome.error.message
    if outcome.dump is not None:
        fields["dump"] = {
            "path": outcome.dump.path,
            "state": outcome.dump.state.value,
            "size": outcome.dump.size,
        }
        analysis = outcome.dump.analysis
        if analysis is not None and analysis.verdict.kind is not None:
            fields["dump"]["cause"] = analysis.verdict.headline
            fields["dump"]["confidence"] = analysis.verdict.confidence.value
    if outcome.recovered:
        fields["recovered"] = True
    record_quietly(audit, "crash.result", outcome.host, **fields)


def _stale(emit: Emit) -> Callable[[str, str], None]:
    def warn(host: str, holder: str) -> None:
        emit(Event(Level.WARNING, f"taking over a stale lock left by {holder}", host, EventKind.WARNING))

    return warn


def _crash(
    runs: list[_HostRun],
    request: CrashRequest,
    confirm: ConfirmCrash,
    emit: Emit,
    audit: AuditLog | None,
    cancel: threading.Event,
    targets: Targets,
    trigger_with: Trigger | None = None,
    gate: Gate | None = None,
) -> None:
    pending = [run for run in runs if run.outcome is None]
    by_name = {run.host.name: run for run in runs}

    def bug(host: Host, exc: Exception) -> None:
        by_name[host.name].settle(CrashStatus.FAILED, internal_error(host, exc))

    try:
        run_per_host(
            [r.host for r in pending],
            lambda h: _preflight(by_name[h.name], request, emit, gate),
            request.parallel,
            on_bug=bug,
        )
        _go_on(pending, runs, request, confirm, emit, audit, cancel, targets, trigger_with, bug)
    finally:
        # whatever ended the run: every planning session no send took is logged out
        close_sessions((run.plan for run in pending if run.plan is not None), request.parallel)


def _go_on(
    pending: list[_HostRun],
    runs: list[_HostRun],
    request: CrashRequest,
    confirm: ConfirmCrash,
    emit: Emit,
    audit: AuditLog | None,
    cancel: threading.Event,
    targets: Targets,
    trigger_with: Trigger | None,
    bug: Callable[[Host, Exception], None],
) -> None:
    """After planning: baselines, the question, the NMIs, the watch and the conclusions."""
    by_name = {run.host.name: run for run in runs}
    ready = [run for run in pending if run.outcome is None]
    baseline = asyncbridge.run(_baselines(ready, targets, emit)) if ready else None
    ready = [run for run in ready if run.outcome is None]
    for run in ready:
        _preflight_event(run, emit)
    if not ready or baseline is None:
        return
    if request.dry_run:
        for run in ready:
            assert run.plan is not None
            run.outcome = CrashOutcome(
                run.host.name,
                run.host.bmc.address,
                CrashStatus.DRY_RUN,
                0,
                via=run.plan.method,
                fallback_reason=run.plan.fallback_reason,
                probe=run.probe,
                warnings=run.plan.warnings,
            )
        return
    # listening starts before the question: a port that cannot be had stops the run (exit 2)
    # before anything is sent, and no early message is missed
    listener = listener_for([run.host for run in ready], request.fence_kdump, emit=emit)
    if listener is not None:
        listener.open()
    results: dict[str, DumpResult] = {}
    try:
        results = _send_and_watch(
            ready, runs, request, confirm, emit, audit, cancel, baseline, targets, trigger_with, bug
        )
    finally:
        consoles = [run for run in ready if run.console is not None]
        if consoles:
            run_per_host(
                [r.host for r in consoles],
                lambda h: _close_console(by_name[h.name], results.get(h.name) if results else None, emit),
                request.parallel,
                on_bug=bug,
            )
        if listener is not None:
            heard = listener.close()
            listened = {host.name for host in listener.hosts}
            for run in ready:
                run.fence_listened = run.host.name in listened
                signal = heard.signal(run.host.name)
                if signal is not None:
                    run.kdump_started = signal.first.isoformat(timespec="seconds")
    sent = [run for run in ready if run.outcome is None and run.nmi is not None]
    run_per_host(
        [r.host for r in sent],
        lambda h: _conclude(by_name[h.name], results.get(h.name), request, emit, audit, cancel),
        request.parallel,
        on_bug=bug,
    )


def _send_and_watch(
    ready: list[_HostRun],
    runs: list[_HostRun],
    request: CrashRequest,
    confirm: ConfirmCrash,
    emit: Emit,
    audit: AuditLog | None,
    cancel: threading.Event,
    baseline: Baseline,
    targets: Targets,
    trigger_with: Trigger | None,
    bug: Callable[[Host, Exception], None],
) -> dict[str, DumpResult]:
    """Ask, record, send one NMI per host, and watch their dumps: each host's result."""
    by_name = {run.host.name: run for run in runs}
    plans = [run.plan for run in ready if run.plan is not None]
    _announce_refusals(runs, emit)  # who is left out, and why, shown before the question

    if cancel.is_set() or (not request.assume_yes and not confirm(plans)):
        why = "interrupted before the NMI" if cancel.is_set() else "not confirmed"
        for run in ready:
            run.settle(CrashStatus.REFUSED, SafetyRefusal(f"{why}; nothing was sent", host=run.host.name))
        return {}
    missing = record_quietly(
        audit, "crash.confirmed", None, hosts=[r.host.name for r in ready], yes=request.assume_yes
    )
    if missing:  # the run's own record failed: the per-host ones would too
        for run in ready:
            run.settle(
                CrashStatus.REFUSED, AuditLogError(f"{missing[0]}; nothing was sent", host=run.host.name)
            )
        return {}

    def trigger(run: _HostRun) -> None:
        assert run.plan is not None
        if cancel.is_set():
            run.settle(
                CrashStatus.REFUSED,
                SafetyRefusal("interrupted before the NMI; nothing was sent", host=run.host.name),
            )
            return
        _open_console(run, request, emit, audit)
        run.nmi_monotonic = time.monotonic()
        run.nmi_at = _now_iso()
        if trigger_with is not None:
            # the guard again, under the lock held for the whole run (trigger_host reads it itself)
            repeat = repeat_refusal(
                audit, run.host, force=request.allow_repeat, window_s=_nmi_request(request).repeat_window_s
            )
            if repeat is not None:
                run.settle(CrashStatus.REFUSED, repeat)
                return
            outcome = trigger_with(run.plan, emit, audit)
        else:
            outcome = trigger_host(run.plan, _nmi_request(request), emit, audit, cancel=cancel)
        run.nmi = outcome  # trigger_host emitted nmi_sent or nmi_outcome_unknown
        if outcome.status == Status.UNKNOWN:
            emit(
                Event(
                    Level.WARNING,
                    "watching for a dump anyway: it would prove the NMI arrived",
                    run.host.name,
                    EventKind.WARNING,
                )
            )
        elif outcome.status != Status.OK:
            assert outcome.error is not None
            run.settle(
                CrashStatus.FAILED, outcome.error, via=outcome.via, fallback_reason=outcome.fallback_reason
            )

    run_per_host([r.host for r in ready], lambda h: trigger(by_name[h.name]), request.parallel, on_bug=bug)
    close_sessions(plans, request.parallel)  # those no send took: not held through the watch
    sent = [run for run in ready if run.outcome is None and run.nmi is not None]
    if not sent:
        return {}
    started = min(run.nmi_monotonic for run in sent if run.nmi_monotonic is not None)
    watcher = DumpWatcher([r.host for r in sent], request.watch, targets=targets, emit=emit)
    results: dict[str, DumpResult] = {}
    try:
        for result in asyncbridge.run(watcher.watch(baseline, started=started), cancel=cancel):
            results[result.host] = result
    except (asyncio.CancelledError, concurrent.futures.CancelledError):
        emit(Event(Level.WARNING, "interrupted: stopped watching", None, EventKind.INTERRUPTED))

        async def partial() -> list[DumpResult]:
            watcher.interrupt()
            return watcher.results()

        for result in asyncbridge.run(partial()):
            results[result.host] = result
    return results
