"""From findings to a verdict: the earliest serious report, its culprit, and how sure oob is.

The rules, in the order an on-call engineer applies them:

1. What ended the kernel: a panic (its reason), an Oops with ``panic_on_oops`` (no panic
   line: the crash kernel starts before it is printed), a SysRq crash, or the NMI a BMC sent.
2. What came before: the earliest serious report (lockup, stall, hung task, Oops, BUG,
   machine check, OOM kill). A fault that starts a cascade comes first, so "earliest" is
   the cause; an RCU stall followed by a soft or hard lockup of the same culprit is one
   episode, named after the lockup (the more precise report) and timed from the stall.
3. Nothing before an NMI panic is a hard hang: say so, and what the NMI's own snapshot
   shows of where a CPU was — thin evidence, said to be thin.

The culprit is the module (out-of-tree or tainting first) or subsystem in the frames of the
report's dumps, the dump whose instruction pointer is there preferred: in an RCU stall the
reporting CPU often only waits for the CPU that is really stuck.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from oob.analysis.kernellog import ParsedLog
from oob.analysis.model import (
    Confidence,
    Finding,
    FindingKind,
    Frame,
    LogFacts,
    Stack,
    Task,
    Verdict,
)

# Frames that say nothing about who is at fault: entry, scheduler, locking, interrupt,
# watchdog, panic and module-loading plumbing.
_GENERIC_PREFIXES = tuple(
    (
        "dump_stack panic nmi_ default_do_nmi exc_nmi end_repeat_nmi asm_ sysvec_ __sysvec irq_ __irq "
        "handle_ do_syscall entry_SYSCALL __x64_sys __ia32_sys __do_sys ksys_ ret_from_fork kthread "
        "worker_thread process_one_work smpboot_thread_fn __schedule schedule io_schedule "
        "preempt_schedule do_one_initcall do_init_module load_module native_ arch_ _raw_ __raw_ "
        "queued_ __pv_queued do_raw_ mutex_ __mutex rwsem_ down_ __down up_ watchdog __hrtimer "
        "hrtimer_ tick_ update_process_times rcu_ __rcu cpu_startup_entry do_idle default_idle "
        "secondary_startup start_kernel x86_64_start smp_call_function on_each_cpu flush_smp_call "
        "__flush_smp generic_exec_single unknown_nmi_error show_ sched_show_task lock_ __lock "
        "finish_task_switch exit_to_user_mode syscall_exit __softirq __do_softirq do_softirq "
        "run_ksoftirqd vfs_ proc_reg_ wait_for_completion __wait_for_common bit_wait "
        "out_of_line_wait_on_bit __wait_on_bit folio_wait wait_on_page __cond_resched _cond_resched "
        "oops_ die __die do_trap do_error_trap exc_ page_fault_oops kernelmode_fixup __bad_area "
        "bad_area do_user_addr_fault __do_fault notifier_ atomic_notifier printk vprintk _printk "
        "console_"
    ).split()
)

# Symbol prefixes of subsystems an engineer routes a hang to.
_SUBSYSTEM_PREFIXES = {
    "ext4": "ext4_ __ext4",
    "jbd2": "jbd2_ __jbd2",
    "xfs": "xfs_ __xfs",
    "btrfs": "btrfs_ __btrfs",
    "nfs": "nfs_ nfs4_ nfs3_ __nfs nfsd",
    "sunrpc": "rpc_ xprt_ svc_ xs_ __rpc",
    "ceph": "ceph_",
    "fuse": "fuse_",
    "block layer": "blk_ __blk bio_ submit_bio blkdev_",
    "scsi": "scsi_ __scsi sd_",
    "nvme": "nvme_",
    "device-mapper": "dm_ __dm",
    "md raid": "md_ raid",
    "networking": "tcp_ udp_ ip_ ipv6_ inet_ sock_ sk_ __netif netif_ napi_ __napi __dev_queue dev_queue net_rx",
    "memory management": (
        "__alloc_pages alloc_pages shrink_ kswapd try_to_free compact_ migrate_ kmem_ __kmalloc kmalloc "
        "out_of_memory oom_ filemap_ __filemap truncate_ writeback_ wb_ balance_dirty"
    ),
    "graphics (drm)": "drm_ i915_ amdgpu_ nouveau_",
    "kvm": "kvm_ vmx_ svm_",
    "usb": "usb_ xhci_",
    "bpf": "bpf_ __bpf",
    "cgroups": "cgroup_ css_",
}
_SUBSYSTEMS = tuple((tuple(prefixes.split()), name) for name, prefixes in _SUBSYSTEM_PREFIXES.items())

#: an IP in one of these means the CPU waits for another one (IPI, lock): look at the others
_WAITING = tuple(
    "smp_call_function on_each_cpu csd_lock_wait "
    "native_queued_spin_lock_slowpath __pv_queued_spin_lock_slowpath queued_spin_lock_slowpath".split()
)

_KIND_WORDS = {
    FindingKind.SOFT_LOCKUP: "soft lockup",
    FindingKind.HARD_LOCKUP: "hard lockup",
    FindingKind.RCU_STALL: "RCU stall",
    FindingKind.HUNG_TASK: "hung task",
    FindingKind.OOPS: "Oops",
    FindingKind.KERNEL_BUG: "kernel BUG",
    FindingKind.GENERAL_PROTECTION: "general protection fault",
    FindingKind.MACHINE_CHECK: "machine check",
    FindingKind.OOM_KILL: "out of memory",
    FindingKind.WARNING: "warning",
    FindingKind.SYSRQ_CRASH: "SysRq crash",
    FindingKind.HARD_HANG: "hard hang",
    FindingKind.PANIC: "panic",
}

_TAINTS = {
    "P": "proprietary module loaded",
    "F": "module force-loaded",
    "S": "kernel running on an out-of-spec system",
    "R": "module force-unloaded",
    "M": "machine check happened",
    "B": "bad page referenced or unexpected page flags",
    "U": "taint requested by userspace",
    "D": "kernel died recently (Oops or BUG)",
    "A": "ACPI table overridden",
    "W": "kernel issued a warning",
    "C": "staging driver loaded",
    "I": "firmware workaround applied",
    "O": "out-of-tree module loaded",
    "E": "unsigned module loaded",
    "L": "soft lockup happened",
    "K": "kernel live patched",
    "X": "auxiliary taint (distribution-defined)",
    "T": "built with struct randomization",
    "N": "in-kernel test run",
}

_NMI_PANIC = ("NMI: Not continuing", "NMI IOCK error", "An NMI occurred")


def is_generic(frame: Frame) -> bool:
    return frame.module is None and frame.symbol.startswith(_GENERIC_PREFIXES)


def subsystem_of(frame: Frame) -> str | None:
    if frame.module:
        return frame.module
    for prefixes, name in _SUBSYSTEMS:
        if frame.symbol.startswith(prefixes):
            return name
    return None


def culprit_of(finding: Finding, suspects: Iterable[str]) -> tuple[str | None, Frame | None, Stack | None]:
    """The module or subsystem the finding's dumps point at, its frame, and the dump."""
    stacks = [s for s in ([finding.stack] if finding.stack else []) + finding.backtraces]
    suspect = set(suspects)
    # a dump whose IP only waits for another CPU is looked at last
    stacks.sort(key=lambda s: bool(s.ip and s.ip.symbol.startswith(_WAITING)))
    passes = (
        lambda f, at_ip: f.module in suspect and at_ip,
        lambda f, at_ip: f.module in suspect,
        lambda f, at_ip: f.module is not None and at_ip,
        lambda f, at_ip: f.module is not None,
        lambda f, at_ip: not is_generic(f) and subsystem_of(f) is not None,
    )
    for test in passes:
        for stack in stacks:
            for index, frame in enumerate(stack.frames()):
                if test(frame, index == 0 and stack.ip is not None):
                    return subsystem_of(frame), frame, stack
    # no module, no known subsystem: the first frame that is not plumbing
    for stack in stacks:
        for frame in stack.frames():
            if not is_generic(frame):
                return None, frame, stack
    return None, None, (stacks[0] if stacks else None)


def taint_reasons(flags: str | None) -> tuple[str, ...]:
    if not flags:
        return ()
    return tuple(f"{letter}: {_TAINTS[letter]}" for letter in flags.replace(" ", "") if letter in _TAINTS)


def facts_of(parsed: ParsedLog) -> LogFacts:
    return LogFacts(
        release=parsed.release,
        tainted=parsed.tainted,
        taint_reasons=taint_reasons(parsed.tainted),
        suspect_modules=tuple(f"{name}({flags})" for name, flags in parsed.suspect_modules.items()),
        nmi_watchdog_off=parsed.nmi_watchdog_off,
        panic_reason=parsed.panic_reason,
        lines=parsed.lines,
    )


def decide(parsed: ParsedLog, notes: list[str]) -> Verdict:
    """The verdict over a parsed log; adds to ``notes`` what limits it."""
    findings = parsed.findings
    suspects = parsed.suspect_modules.keys()
    for finding in findings:
        culprit, frame, _ = culprit_of(finding, suspects)
        finding.culprit, finding.culprit_frame = culprit, frame

    if not findings:
        if parsed.lines == 0:
            return Verdict(None, "no kernel log", "The kernel log is empty.", Confidence.NONE)
        return Verdict(
            None,
            "no crash report in the log",
            "The kernel log holds no panic, Oops, lockup or stall: it may have been cut before the crash "
            "(kdump saves the log of the crashed kernel; a log from the running system says nothing about it).",
            Confidence.NONE,
        )

    ending = _ending(findings)
    if ending is None:
        notes.append(
            "the log ends without a panic or an Oops: it was cut short, or this is not the log of the crash"
        )
    before = findings[: findings.index(ending)] if ending is not None else findings
    serious = [f for f in before if f.serious]
    if ending is not None and ending.serious:
        serious.append(ending)
    reasons: list[str] = []
    if parsed.suspect_modules:
        reasons.append(
            "the kernel was tainted by "
            + ", ".join(f"{name} ({flags})" for name, flags in parsed.suspect_modules.items())
        )

    if serious:
        primary = serious[0]
        first = primary
        if primary.kind is FindingKind.RCU_STALL:
            lockup = next(
                (
                    f
                    for f in serious[1:]
                    if f.kind in (FindingKind.SOFT_LOCKUP, FindingKind.HARD_LOCKUP)
                    and f.culprit == primary.culprit
                ),
                None,
            )
            if lockup is not None:
                primary = lockup
        verdict = _from_report(primary, first, ending, serious, suspects, reasons, notes)
        if ending is None and verdict.confidence is Confidence.HIGH:
            verdict = replace(
                verdict, confidence=Confidence.MEDIUM, reasons=(*verdict.reasons, "the log is incomplete")
            )
        return verdict

    assert ending is not None  # findings without a serious one end in a panic, SysRq or NMI
    if ending.kind is FindingKind.SYSRQ_CRASH or (
        ending.kind is FindingKind.PANIC and "sysrq triggered crash" in (ending.detail or "")
    ):
        task = _task_near(findings, ending)
        who = f" by {task}" if task else ""
        return Verdict(
            FindingKind.SYSRQ_CRASH,
            "SysRq crash (on purpose)",
            f"The kernel was crashed on purpose through SysRq (echo c > /proc/sysrq-trigger){who}; "
            "no lockup, stall or fault was logged before it.",
            Confidence.HIGH,
            culprit="sysrq",
            task=task,
            cpu=_cpu_near(findings, ending),
            time=ending.time,
            reasons=tuple(reasons),
        )
    if _is_nmi_panic(findings, ending):
        return _hard_hang(parsed, findings, ending, reasons, notes)
    # a panic with no report before it: its own reason is the cause
    culprit, frame, stack = culprit_of(ending, suspects)
    reason = ending.detail or "unknown reason"
    return Verdict(
        FindingKind.PANIC,
        f"panic: {reason}"[:80],
        f"The kernel panicked: {reason}." + (f" It was in {frame}." if frame else ""),
        Confidence.HIGH if frame or culprit else Confidence.MEDIUM,
        culprit=culprit,
        cpu=stack.cpu if stack else ending.cpu,
        task=stack.task if stack else ending.task,
        ip=stack.ip if stack else None,
        time=ending.time,
        reasons=tuple(reasons),
    )


def _ending(findings: list[Finding]) -> Finding | None:
    """The report that ended the kernel: the last panic, else the last Oops-class fault or SysRq."""
    for finding in reversed(findings):
        if finding.kind is FindingKind.PANIC:
            # the SysRq or NMI line just before the panic is what caused it
            return finding
    for finding in reversed(findings):
        if finding.kind in (
            FindingKind.OOPS,
            FindingKind.KERNEL_BUG,
            FindingKind.GENERAL_PROTECTION,
            FindingKind.SYSRQ_CRASH,
        ):
            return finding
    return None


def _is_nmi_panic(findings: list[Finding], ending: Finding) -> bool:
    if ending.kind is FindingKind.NMI:
        return True
    return ending.kind is FindingKind.PANIC and any(text in (ending.detail or "") for text in _NMI_PANIC)


def _task_near(findings: list[Finding], ending: Finding) -> Task | None:
    return ending.task or next((f.task for f in reversed(findings) if f.task and f.line <= ending.line), None)


def _cpu_near(findings: list[Finding], ending: Finding) -> int | None:
    return ending.cpu if ending.cpu is not None else (ending.stack.cpu if ending.stack else None)


def _from_report(
    primary: Finding,
    first: Finding,
    ending: Finding | None,
    serious: list[Finding],
    suspects: Iterable[str],
    reasons: list[str],
    notes: list[str],
) -> Verdict:
    if primary.kind is FindingKind.OOM_KILL:
        return _out_of_memory(primary, serious, reasons)
    if primary.kind is FindingKind.MACHINE_CHECK:
        return _machine_check(primary, reasons)
    culprit, frame, stack = culprit_of(primary, suspects)
    words = _KIND_WORDS[primary.kind]
    cpu = stack.cpu if stack and stack.cpu is not None else primary.cpu
    task = stack.task if stack and stack.task else primary.task
    ip = stack.ip if stack else None
    where = f" in {culprit}" if culprit else (f" in {frame.symbol}" if frame else "")
    headline = f"{words}{where}"
    if primary.kind is FindingKind.OOPS and primary.detail and primary.detail.startswith("NULL"):
        headline = f"NULL dereference{where}"

    parts = [f"{_sentence_start(words)}{uptime(primary.time)}"]
    if primary.kind is FindingKind.RCU_STALL and stack is not None and primary.stack is not stack:
        reporter = primary.stack
        if reporter is not None and reporter.ip is not None and reporter.ip.symbol.startswith(_WAITING):
            parts.append(
                f"CPU {reporter.cpu} ({reporter.task}) waits in {reporter.ip.symbol} for CPU {stack.cpu}, "
                f"which runs {stack.ip or frame} ({stack.task})"
            )
        else:
            parts.append(f"CPU {stack.cpu} ({stack.task}) runs {stack.ip or frame}")
    elif cpu is None and task is not None:
        # a blocked task is on no CPU: where it waits is the frame that is not plumbing
        parts.append(f"{task} waits in {frame}" if frame else f"{task}")
    else:
        on = f"CPU {cpu}" if cpu is not None else "a CPU"
        by = f" ({task})" if task else ""
        at = f" in {ip}" if ip else (f" in {frame}" if frame else "")
        parts.append(f"{on}{by}{at}")
    if primary.detail and primary.kind is not FindingKind.RCU_STALL:
        parts.append(primary.detail)
    summary = ": ".join(parts[:2]) + ("; " + "; ".join(parts[2:]) if len(parts) > 2 else "") + "."
    if first is not primary:
        summary += f" An RCU stall was reported first{uptime(first.time)}." if first.time is not None else ""
    others = [f for f in serious if f is not primary and f is not first and f.kind is primary.kind]
    if others:
        cpus = sorted({f.cpu for f in others if f.cpu is not None and f.cpu != cpu})
        if cpus:
            summary += f" Also on CPU {', '.join(map(str, cpus))}."

    confidence = _confidence(primary, culprit, frame, suspects)
    if culprit:
        reasons.append(f"the trace points at {culprit} ({frame})")
    if primary.kind in (FindingKind.OOPS, FindingKind.KERNEL_BUG, FindingKind.GENERAL_PROTECTION) and (
        ending is primary or ending is None or ending.kind is not FindingKind.PANIC
    ):
        notes.append(
            "no 'Kernel panic' line after the Oops: with panic_on_oops the crash kernel starts before it is printed"
        )
    if primary.kind is FindingKind.HUNG_TASK:
        reasons.append("a hung task is often a victim: the lock or I/O it waits for is held elsewhere")
    if primary.kind is FindingKind.RCU_STALL:
        reasons.append("an RCU stall names where CPUs were stuck, not always why")
    return Verdict(
        primary.kind,
        headline,
        summary,
        confidence,
        culprit=culprit,
        cpu=cpu,
        task=task,
        ip=ip,
        time=primary.time,
        reasons=tuple(reasons),
    )


def _sentence_start(words: str) -> str:
    return words[0].upper() + words[1:]


def _confidence(
    primary: Finding, culprit: str | None, frame: Frame | None, suspects: Iterable[str]
) -> Confidence:
    if primary.kind is FindingKind.MACHINE_CHECK:
        return Confidence.HIGH
    if primary.stack is None and not primary.backtraces:
        return Confidence.LOW
    strong = culprit is not None and (
        culprit in set(suspects) or (frame is not None and frame.module is not None)
    )
    if primary.kind in (
        FindingKind.OOPS,
        FindingKind.KERNEL_BUG,
        FindingKind.GENERAL_PROTECTION,
        FindingKind.SOFT_LOCKUP,
        FindingKind.HARD_LOCKUP,
    ):
        return Confidence.HIGH if culprit else Confidence.MEDIUM
    if primary.kind is FindingKind.RCU_STALL:
        return Confidence.HIGH if strong else Confidence.MEDIUM
    if primary.kind is FindingKind.HUNG_TASK:
        return Confidence.MEDIUM if culprit else Confidence.LOW
    return Confidence.MEDIUM


def _hard_hang(
    parsed: ParsedLog, findings: list[Finding], ending: Finding, reasons: list[str], notes: list[str]
) -> Verdict:
    culprit, frame, stack = culprit_of(ending, parsed.suspect_modules.keys())
    nmi = next((f for f in reversed(findings) if f.kind is FindingKind.NMI and f.line <= ending.line), None)
    cpu = stack.cpu if stack else (nmi.cpu if nmi else None)
    task = stack.task if stack else None
    ip = stack.ip if stack else None
    summary = (
        "Nothing was logged before the NMI: no lockup, stall or fault report. The CPUs were stuck where "
        "nothing could print (interrupts off, or the watchdogs were off or too slow to fire)."
    )
    if ip is not None:
        summary += f" When the NMI arrived, CPU {cpu} ({task}) was in {ip}."
    elif frame is not None:
        summary += f" When the NMI arrived, CPU {cpu} was in {frame}."
    warnings = [f for f in findings if f.kind is FindingKind.WARNING and f.line < ending.line]
    if warnings:
        summary += f" Only {len(warnings)} warning(s) came before it, the first: {warnings[0].title}"
    reasons.append(
        "nothing was logged before the NMI: the only evidence is one CPU's snapshot when it arrived"
    )
    if parsed.nmi_watchdog_off:
        reasons.append(
            "the NMI watchdog was off (boot log), so a CPU stuck with interrupts off could not report itself"
        )
    reasons.append("crash's 'bt -a' shows every CPU, which this log does not")
    where = f"; CPU {cpu} in {culprit}" if culprit else ""
    return Verdict(
        FindingKind.HARD_HANG,
        f"hard hang (nothing logged){where}",
        summary,
        Confidence.LOW,
        culprit=culprit,
        cpu=cpu,
        task=task,
        ip=ip,
        time=ending.time,
        reasons=tuple(reasons),
    )


def _out_of_memory(primary: Finding, serious: list[Finding], reasons: list[str]) -> Verdict:
    killed = [
        f for f in serious if f.kind is FindingKind.OOM_KILL and f.detail and f.detail.startswith("killed")
    ]
    victim = killed[0].task if killed else None
    headline = f"out of memory (killed {victim})" if victim else "out of memory"
    summary = f"Memory ran out{uptime(primary.time)}"
    if primary.detail and "invoked" in primary.detail:
        summary += f" ({primary.detail})"
    if killed:
        summary += f"; the OOM killer killed {', '.join(str(f.task) for f in killed[:5])}"
        if len(killed) > 5:
            summary += f" and {len(killed) - 5} more"
    summary += "."
    reasons.append("the killed task is the biggest, not necessarily the one that used the memory up")
    return Verdict(
        FindingKind.OOM_KILL,
        headline,
        summary,
        Confidence.MEDIUM,
        culprit="memory",
        cpu=primary.cpu,
        task=victim,
        time=primary.time,
        reasons=tuple(reasons),
    )


def _machine_check(primary: Finding, reasons: list[str]) -> Verdict:
    on = f" on CPU {primary.cpu}" if primary.cpu is not None else ""
    summary = (
        f"The hardware reported an error{on}: {primary.detail}." if primary.detail else f"Machine check{on}."
    )
    reasons.append("a machine check is the hardware's report: the BMC's event log has the component")
    return Verdict(
        FindingKind.MACHINE_CHECK,
        f"machine check (hardware){on}",
        summary + " Run the mce lines through 'mcelog --ascii' or 'rasdaemon' for the component.",
        Confidence.HIGH,
        culprit="hardware",
        cpu=primary.cpu,
        time=primary.time,
        reasons=tuple(reasons),
    )


def uptime(seconds: float | None) -> str:
    """`` at 15.1 s`` after boot; long uptimes in days and hours too: a 3 a.m. reader should
    not divide 2525445 by 86400."""
    if seconds is None:
        return ""
    if seconds < 3600:
        return f" at {seconds:.1f} s"
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    text = f"{days} d {hours} h" if days else f"{hours} h {minutes} min"
    return f" at {seconds:.1f} s ({text} after boot)"
