"""What a kernel log says about a crash: findings, the verdict, and how sure it is.

These are the typed results of :func:`oob.analysis.analyze_text`; ``to_dict`` gives the
``analysis`` object of ``--json`` output (keys documented in README's analysis section).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from oob.analysis.handoff import CrashHandoff


class FindingKind(StrEnum):
    """What one report in the log is (each value's text is what ``--json`` carries)."""

    #: an NMI panic with no earlier report: the CPUs were stuck where nothing could print
    HARD_HANG = "hard_hang"
    #: ``watchdog: BUG: soft lockup - CPU#N stuck for Ns! [comm:pid]``
    SOFT_LOCKUP = "soft_lockup"
    #: the NMI watchdog's ``Watchdog detected hard LOCKUP on cpu N``
    HARD_LOCKUP = "hard_lockup"
    #: ``rcu: INFO: rcu_preempt self-detected stall on CPU`` / ``detected stalls on CPUs/tasks``
    RCU_STALL = "rcu_stall"
    #: ``INFO: task comm:pid blocked for more than N seconds.`` (D state)
    HUNG_TASK = "hung_task"
    #: ``BUG: kernel NULL pointer dereference``, ``BUG: unable to handle page fault``, ``Oops:``
    OOPS = "oops"
    #: ``kernel BUG at file:line!``
    KERNEL_BUG = "kernel_bug"
    #: ``general protection fault``
    GENERAL_PROTECTION = "general_protection_fault"
    #: ``WARNING: CPU: N PID: P at file:line``
    WARNING = "warning"
    #: ``mce: [Hardware Error]`` and uncorrected EDAC memory errors
    MACHINE_CHECK = "machine_check"
    #: ``invoked oom-killer`` / ``Out of memory: Killed process``
    OOM_KILL = "oom_kill"
    #: ``sysrq: Trigger a crash``: someone crashed the kernel on purpose
    SYSRQ_CRASH = "sysrq_crash"
    #: ``Uhhuh. NMI received for unknown reason`` and the other NMI reports: a BMC's NMI
    NMI = "nmi"
    #: ``Kernel panic - not syncing: ...``
    PANIC = "panic"


#: reports that can explain a hang or a crash on their own; warnings and NMIs cannot
SERIOUS = frozenset(
    {
        FindingKind.SOFT_LOCKUP,
        FindingKind.HARD_LOCKUP,
        FindingKind.RCU_STALL,
        FindingKind.HUNG_TASK,
        FindingKind.OOPS,
        FindingKind.KERNEL_BUG,
        FindingKind.GENERAL_PROTECTION,
        FindingKind.MACHINE_CHECK,
        FindingKind.OOM_KILL,
    }
)


class Confidence(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    #: no kernel log to read, or nothing in it about a crash
    NONE = "none"


@dataclass(frozen=True)
class Frame:
    """One function in a trace: ``nmihang_spin+0xd/0x10 [nmihang]``."""

    symbol: str
    offset: str = ""
    module: str | None = None

    def __str__(self) -> str:
        return f"{self.symbol} [{self.module}]" if self.module else self.symbol

    def to_dict(self) -> dict[str, object]:
        return {"symbol": self.symbol, "offset": self.offset, "module": self.module}


@dataclass(frozen=True)
class Task:
    comm: str
    pid: int

    def __str__(self) -> str:
        return f"{self.comm}:{self.pid}"


@dataclass(frozen=True)
class Stack:
    """A register and trace dump (``CPU: N PID: P Comm: C`` or ``task:C state:D``)."""

    line: int
    cpu: int | None = None
    task: Task | None = None
    #: the instruction pointer's function (``RIP: 0010:...`` in kernel mode, or ``pc :``)
    ip: Frame | None = None
    #: the reliable frames of the call trace, innermost first ("?" guesses left out)
    trace: tuple[Frame, ...] = ()
    #: ``state:D`` of a task dump
    state: str | None = None
    #: ``Tainted: G OE`` flags, "" when ``Not tainted``
    tainted: str | None = None
    release: str | None = None

    def frames(self) -> tuple[Frame, ...]:
        return ((self.ip,) if self.ip else ()) + self.trace

    def to_dict(self) -> dict[str, object]:
        return {
            "cpu": self.cpu,
            "task": str(self.task) if self.task else None,
            "ip": self.ip.to_dict() if self.ip else None,
            "trace": [str(f) for f in self.trace],
            "state": self.state,
        }


@dataclass
class Finding:
    """One report the kernel printed, with the dump that belongs to it."""

    kind: FindingKind
    #: the header line as printed (without its timestamp), cut to a sane length
    title: str
    #: 1-based line number in the log, and the printk timestamp in seconds since boot
    line: int
    time: float | None = None
    cpu: int | None = None
    task: Task | None = None
    stack: Stack | None = None
    #: other CPUs' backtraces printed for this report (RCU stalls, hard lockups)
    backtraces: list[Stack] = field(default_factory=list)
    #: CPUs the report names (an RCU stall's stalled CPUs)
    cpus: tuple[int, ...] = ()
    #: kind-specific detail: fault address, ``file:line``, seconds stuck, the lock holder...
    detail: str | None = None
    #: the module or subsystem the evidence points at, and the frame it came from
    culprit: str | None = None
    culprit_frame: Frame | None = None

    @property
    def ip(self) -> Frame | None:
        return self.stack.ip if self.stack else None

    @property
    def serious(self) -> bool:
        return self.kind in SERIOUS

    def to_dict(self) -> dict[str, object]:
        stack = self.stack
        return {
            "kind": self.kind.value,
            "title": self.title,
            "line": self.line,
            "time": self.time,
            "cpu": self.cpu,
            "task": str(self.task) if self.task else None,
            "ip": self.ip.to_dict() if self.ip else None,
            "trace": [str(f) for f in stack.trace] if stack else [],
            "cpus": list(self.cpus),
            "backtraces": [b.to_dict() for b in self.backtraces],
            "detail": self.detail,
            "culprit": self.culprit,
        }


@dataclass(frozen=True)
class Verdict:
    """The most likely cause, in a few words and in full."""

    kind: FindingKind | None
    #: a few words for a report's cause column: ``soft lockup in nmihang``
    headline: str
    #: one or two sentences for people
    summary: str
    confidence: Confidence
    culprit: str | None = None
    cpu: int | None = None
    task: Task | None = None
    ip: Frame | None = None
    time: float | None = None
    #: why oob is (not) sure, one reason per entry
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind.value if self.kind else None,
            "headline": self.headline,
            "summary": self.summary,
            "confidence": self.confidence.value,
            "culprit": self.culprit,
            "cpu": self.cpu,
            "task": str(self.task) if self.task else None,
            "ip": self.ip.to_dict() if self.ip else None,
            "time": self.time,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True)
class LogFacts:
    """What the log says about the kernel itself."""

    release: str | None = None
    #: taint flags at the last report (``G OE``), "" when not tainted, None when not printed
    tainted: str | None = None
    #: what each taint letter means, for the flags that are set
    taint_reasons: tuple[str, ...] = ()
    #: modules the log names as out-of-tree, unsigned, proprietary or staging, with flags
    suspect_modules: tuple[str, ...] = ()
    #: the NMI (hard lockup) watchdog was off at boot: a CPU stuck with interrupts off
    #: could not report itself
    nmi_watchdog_off: bool = False
    #: ``Kernel panic - not syncing: <reason>`` (the last one), None when none was printed
    panic_reason: str | None = None
    lines: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "release": self.release,
            "tainted": self.tainted,
            "taint_reasons": list(self.taint_reasons),
            "suspect_modules": list(self.suspect_modules),
            "nmi_watchdog_off": self.nmi_watchdog_off,
            "panic_reason": self.panic_reason,
            "lines": self.lines,
        }


@dataclass(frozen=True)
class Analysis:
    """Everything oob read from one kernel log."""

    facts: LogFacts
    findings: tuple[Finding, ...]
    verdict: Verdict
    #: where the log came from (a path, ``makedumpfile --dump-dmesg``, "text")
    source: str = "text"
    #: what limited the analysis: a log cut short, binary bytes, a log too big to read whole
    notes: tuple[str, ...] = ()
    #: how to open the dump in crash (set by callers that know where the dump is)
    handoff: CrashHandoff | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "kernel": self.facts.to_dict(),
            "verdict": self.verdict.to_dict(),
            "findings": [f.to_dict() for f in self.findings],
            "notes": list(self.notes),
            "crash": self.handoff.to_dict() if self.handoff else None,
        }
