"""``oob drill``: crash a *healthy*, ready host on purpose and check that its dump arrives.

For maintenance windows.  The crash runbook (:func:`oob.runbook.crash.run_crash`: locks,
audit, confirmation, watch, recover, report) with three changes: the host must look
healthy (its probe answers), :func:`oob.runbook.preflight.readiness` must say it is ready
(refused otherwise, exit 7, unless ``force``), and the crash is ``echo c >
/proc/sysrq-trigger`` over SSH (``method="sysrq"``, the classic kdump test) or the BMC's
NMI (``method="nmi"``, which also proves the NMI path).  A drill passes when the dump is
complete and the host came back.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from oob import asyncbridge
from oob.audit import AuditLog
from oob.errors import HostSshError, OobError, OutcomeUnknown, SafetyRefusal
from oob.events import Emit, Event, EventKind, Level
from oob.model import Host
from oob.runbook.common import Outcome, Status
from oob.runbook.crash import (
    ConfirmCrash,
    CrashOutcome,
    CrashReport,
    CrashRequest,
    CrashStatus,
    Gate,
    Trigger,
    run_crash,
)
from oob.runbook.guard import record_quietly
from oob.runbook.nmi import CrashPlan
from oob.runbook.preflight import (
    HostReadiness,
    PreflightRequest,
    emit_readiness,
    host_ssh_deadline,
    readiness,
)

METHODS = ("sysrq", "nmi")

#: sync, then the write that crashes the kernel; without root through ``sudo -n`` (never a prompt)
SYSRQ_SCRIPT = (
    "sync\n"
    'if [ "$(id -u)" = 0 ]; then printf c | tee /proc/sysrq-trigger >/dev/null\n'
    "else printf c | sudo -n tee /proc/sysrq-trigger >/dev/null; fi\n"
    'echo "@@oob rc $?"\n'
)


@dataclass(frozen=True)
class DrillRequest:
    crash: CrashRequest = field(default_factory=lambda: CrashRequest(expect_hung=False))
    preflight: PreflightRequest = field(default_factory=PreflightRequest)
    #: "sysrq" (over SSH) or "nmi" (through the BMC)
    method: str = "sysrq"
    #: seconds the sysrq write may take before the connection is taken as gone with the kernel
    sysrq_timeout_s: float = 10.0


class Verdict(StrEnum):
    """A drill's result (``drill`` in reports)."""

    PASS = "pass"
    FAIL = "fail"
    REFUSED = "refused"
    DRY_RUN = "dry-run"


@dataclass(frozen=True)
class DrillOutcome:
    crash: CrashOutcome
    method: str
    readiness: HostReadiness | None = None

    @property
    def passed(self) -> bool:
        return self.crash.status == CrashStatus.COMPLETE and self.crash.host_back is not False

    @property
    def verdict(self) -> Verdict:
        if self.crash.status == CrashStatus.REFUSED:
            return Verdict.REFUSED
        if self.crash.status == CrashStatus.DRY_RUN:
            return Verdict.DRY_RUN
        return Verdict.PASS if self.passed else Verdict.FAIL

    @property
    def exit_code(self) -> int:
        if self.crash.status == CrashStatus.COMPLETE and not self.passed:
            return 5  # the dump arrived, the host did not come back: the drill failed
        return self.crash.exit_code

    def timings(self) -> dict[str, float | None]:
        dump = self.crash.dump
        return {
            "trigger_to_complete_s": round(dump.seconds, 3)
            if dump is not None and dump.ok and dump.seconds
            else None,
            "trigger_to_back_s": round(self.crash.back_after_s, 3)
            if self.crash.back_after_s is not None
            else None,
        }

    def to_dict(self) -> dict[str, Any]:
        data = self.crash.to_dict()
        data["drill"] = self.verdict
        data["method"] = self.method
        data["timings"] = self.timings()
        if self.readiness is not None:
            data["ready"] = self.readiness.ready
            data["problems"] = [f"{c.name}: {c.reason}" for c in self.readiness.problems]
        data["exit_code"] = self.exit_code
        return data


@dataclass(frozen=True)
class DrillReport:
    outcomes: list[DrillOutcome]

    @property
    def exit_code(self) -> int:
        return max((o.exit_code for o in self.outcomes), default=0)


def sysrq_trigger(request: DrillRequest) -> Trigger:
    """Write ``c`` to the host's /proc/sysrq-trigger over SSH, once."""

    def trigger(plan: CrashPlan, emit: Emit, audit: AuditLog | None) -> Outcome:
        host = plan.host
        where = {
            "address": host.address,
            "user": host.ssh.user,
            "port": host.ssh.port,
            "machine": host.bmc.machine,
        }
        if audit:
            try:
                audit.record("sysrq.sending", host.name, **where)
            except OobError as exc:
                return Outcome.from_error(host.name, "sysrq", exc.for_host(host.name), via="sysrq")
        at = datetime.now(UTC).isoformat(timespec="seconds")
        emit(
            Event(
                Level.PROGRESS,
                "writing c to /proc/sysrq-trigger over SSH",
                host.name,
                EventKind.SYSRQ_SENDING,
                {"via": "sysrq"},
            )
        )
        deadline = host_ssh_deadline(request.crash.ssh, 1, request.sysrq_timeout_s)
        try:
            rc, detail = asyncbridge.run(_write_trigger(host, request), timeout=deadline)
        except OobError as exc:
            # raised before the script was sent (connect, login, host key): nothing was crashed
            record_quietly(audit, "sysrq.failed", host.name, error=exc.kind, message=exc.message, **where)
            error = HostSshError(f"sysrq over SSH: {exc.message}; nothing was crashed", host=host.name)
            return Outcome.from_error(host.name, "sysrq", error, via="sysrq")
        except TimeoutError:
            # the session's own bounds did not hold: the write may have been made
            message = f"sysrq over SSH: no answer within {deadline:g} s; the host may have been crashed"
            unknown = OutcomeUnknown(message, host=host.name)
            missing = record_quietly(
                audit, "sysrq.failed", host.name, error=unknown.kind, message=message, **where
            )
            emit(
                Event(
                    Level.ERROR,
                    f"{message} — NOT resending",
                    host.name,
                    EventKind.NMI_OUTCOME_UNKNOWN,
                    {"via": "sysrq"},
                )
            )
            return Outcome.from_error(host.name, "sysrq", unknown, via="sysrq", warnings=missing)
        if rc is not None and rc != 0:
            record_quietly(audit, "sysrq.failed", host.name, error="host_ssh", message=detail, **where)
            error = HostSshError(
                f"writing /proc/sysrq-trigger failed: {detail}; nothing was crashed", host=host.name
            )
            return Outcome.from_error(host.name, "sysrq", error, via="sysrq")
        answer = "the write returned" if rc == 0 else f"the connection went down with the kernel ({detail})"
        missing = record_quietly(audit, "sysrq.sent", host.name, answer=answer, **where)
        for warning in missing:
            emit(Event(Level.WARNING, warning, host.name, EventKind.AUDIT_RECORD_MISSING))
        emit(
            Event(
                Level.INFO,
                f"sysrq crash triggered over SSH ({answer})",
                host.name,
                EventKind.SYSRQ_SENT,
                {"via": "sysrq", "at": at, "answer": answer},
            )
        )
        return Outcome(
            host.name, "sysrq", Status.OK, via="sysrq", warnings=missing, detail={"answer": answer}
        )

    return trigger


async def _write_trigger(host: Host, request: DrillRequest) -> tuple[int | None, str]:
    from oob.preflight.hostssh import HostShell

    async with HostShell(host, request.crash.ssh) as shell:
        ran = await shell.run(SYSRQ_SCRIPT, timeout=request.sysrq_timeout_s)
    marks = [line for line in ran.stdout.splitlines() if line.startswith("@@oob rc ")]
    if marks:
        code = marks[-1].split()[-1]
        return (int(code) if code.isdigit() else 1), ran.stderr.strip() or ran.stdout.strip()
    if ran.rc not in (None, 0):
        return ran.rc, ran.stderr.strip() or f"exit status {ran.rc}"
    return None, ran.stderr.strip() or "no answer"


def readiness_gate(request: DrillRequest, emit: Emit, seen: dict[str, HostReadiness]) -> Gate:
    lock = threading.Lock()

    def gate(host: Host, plan: CrashPlan) -> OobError | None:
        result = readiness(host, plan, request.preflight)
        with lock:
            seen[host.name] = result
        emit_readiness(result, emit)
        ssh = result.check("ssh")
        if request.method == "sysrq" and ssh is not None and ssh.status == "fail":
            return HostSshError(
                f"{ssh.reason}: a sysrq drill needs SSH to the host; nothing was crashed", host=host.name
            )
        if result.ready:
            return None
        problems = "; ".join(
            f"{c.name}: {c.reason}" for c in result.problems if c.status == "fail" or request.preflight.strict
        )
        if request.crash.force:
            emit(
                Event(
                    Level.WARNING,
                    f"not ready ({problems}); drilling anyway (--force)",
                    host.name,
                    EventKind.WARNING,
                )
            )
            return None
        return SafetyRefusal(
            f"not ready for a drill: {problems}; fix it, or use --force to crash it anyway", host=host.name
        )

    return gate


def run_drill(
    hosts: Sequence[Host],
    request: DrillRequest,
    *,
    confirm: ConfirmCrash,
    emit: Emit,
    audit: AuditLog | None,
    cancel: threading.Event | None = None,
) -> DrillReport:
    seen: dict[str, HostReadiness] = {}
    trigger = sysrq_trigger(request) if request.method == "sysrq" else None
    report: CrashReport = run_crash(
        hosts,
        request.crash,
        confirm=confirm,
        emit=emit,
        audit=audit,
        cancel=cancel,
        trigger=trigger,
        gate=readiness_gate(request, emit, seen),
    )
    return DrillReport([DrillOutcome(o, request.method, seen.get(o.host)) for o in report.outcomes])
