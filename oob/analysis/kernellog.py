"""Reading a kernel log into findings: each report the kernel printed and the dump under it.

The texts matched are the kernel's own (``kernel/watchdog.c``, ``kernel/hung_task.c``,
``kernel/rcu/tree_stall.h``, ``arch/x86/mm/fault.c``, ``arch/x86/kernel/dumpstack.c``,
``kernel/panic.c``, ``lib/nmi_backtrace.c``, ``mm/oom_kill.c``, ``arch/x86/kernel/cpu/mce/core.c``,
``drivers/tty/sysrq.c``, ``arch/x86/kernel/nmi.c``), as printed by 4.x to 6.x kernels; the
real logs in ``tests/data/kernel-logs`` are the ground truth.

Two facts of real logs shape this reader:

- A report's header (``watchdog: BUG: soft lockup - CPU#1 ...``) and its register dump
  (``CPU: 1 PID: 130 Comm: ...``, ``RIP:``, ``Call Trace:``) are separate lines, and when two
  CPUs report at once their lines interleave. A dump is therefore given to the latest
  report still waiting for one *on the same CPU*, not simply to the previous line's report.
- Timestamps are per CPU and not monotonic (an NMI backtrace can carry an earlier time
  than the stall report that asked for it): order is the order of lines.

One pass, each line tried against anchored patterns; nothing here backtracks on hostile
input, so a 10,000-line log takes milliseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from oob.analysis.model import Finding, FindingKind, Frame, Stack, Task

#: longest title kept (a crafted log can have lines of any length)
MAX_TITLE = 240
#: frames kept per trace
MAX_FRAMES = 48
#: reports kept (the first ones and the last ones matter: what started it, what ended it)
MAX_FINDINGS = 400
#: a kernel log record is at most 1,024 characters (printk's LOG_LINE_MAX); the rest of a
#: longer line is not read
MAX_LINE_CHARS = 4096
#: lines after its header within which a report still takes its dump
DUMP_WINDOW = 80
#: reports waiting for their dump at once (two per CPU of a big host is plenty)
MAX_PENDING = 512

# "[ 1234.567890] text", "<4>[ 1.5] text", "[    7.9] [  T127] text" (CONFIG_PRINTK_CALLER),
# and syslog/journal lines "Nov 30 03:12:01 web42 kernel: [ 7.9] text"
# Every pattern here is linear in the line's length: no two adjacent parts can match the same
# characters (a crafted line must not make a regex backtrack), and lines are cut to
# MAX_LINE_CHARS first.
_PREFIX = re.compile(
    r"^(?:[A-Z][a-z]{2}\s+\d{1,2}\s+\d{2}:\d{2}:\d{2}\s+\S+\s+kernel:\s?"
    r"|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?\s+\S+\s+kernel:\s?)?"
    r"(?:<\d+>)?(?:\[\s*(?P<time>\d+\.\d+)\]\s?)?(?:\[\s*[CT]\d+\]\s?)?"
)
# "nmihang_spin+0xd/0x10 [nmihang]", older "[<ffffffff8104a9a5>] intel_idle+0x85/0x130"
_FRAME = re.compile(
    r"^\s*(?:\[<[0-9a-f]+>\]\s*)?(?P<guess>\?\s+)?(?P<sym>[A-Za-z_.$][\w.$]*)"
    r"(?P<off>\+0x[0-9a-f]+/0x[0-9a-f]+)(?:\s+\[(?P<mod>[\w-]+)\])?\s*$"
)
_FRAME_ANYWHERE = re.compile(
    # the look-behind: a symbol starts where a name starts, not inside one (linear search)
    r"(?<![\w.$])(?P<sym>[A-Za-z_.$][\w.$]*)(?P<off>\+0x[0-9a-f]+/0x[0-9a-f]+)(?:\s+\[(?P<mod>[\w-]+)\])?"
)
_CPU_LINE = re.compile(
    r"^CPU: (?P<cpu>\d+) (?:UID: \d+ )?PID: (?P<pid>\d+) Comm: (?P<comm>.{1,16}?)"
    r"(?: Kdump: \w+)?\s+(?:Not tainted|Tainted: (?P<taint>[A-Z][A-Z ]{0,40}?))\s+(?P<rel>\d\S*)(?:\s|$)"
)
_TASK_LINE = re.compile(r"^task:(?P<comm>.{1,16}?)\s+state:(?P<state>\w)\b.*?\bpid:\s*(?P<pid>\d+)")
_RIP = re.compile(r"^(?:RIP: [0-9a-f]{4}:|pc : |EIP: |NIP: \[<[0-9a-f]+>\] |PSW:.*?\()(?P<rest>.*)$")
_MARKER = re.compile(r"^\s*</?(?P<name>TASK|NMI|IRQ|SOFTIRQ|EOE)>\s*$")
_CALL_TRACE = re.compile(r"^(?:Call Trace:|Call trace:|Backtrace:)\s*$")
_MODULES = re.compile(r"^Modules linked in:(?P<list>.*)$")
_MODULE_FLAGS = re.compile(r"(?<![\w-])(?P<name>[\w-]+)\((?P<flags>[A-Z+\-]+)\)")

# -- report headers ---------------------------------------------------------------------------
_SOFT_LOCKUP = re.compile(
    r"(?:watchdog: )?BUG: soft lockup - CPU#(?P<cpu>\d+) stuck for (?P<secs>\d+)s! \[(?P<comm>.{1,16}):(?P<pid>\d+)\]"
)
_HARD_LOCKUP = re.compile(r"Watchdog detected hard LOCKUP on cpu (?P<cpu>\d+)")
_RCU_SELF = re.compile(r"(?:rcu: )?INFO: (?P<flavor>rcu_\w+) self-detected stall on CPU")
_RCU_OTHERS = re.compile(r"(?:rcu: )?INFO: (?P<flavor>rcu_\w+) detected stalls? on CPUs?/tasks:")
_RCU_CPU = re.compile(r"^(?:rcu: )?\s*(?P<cpu>\d+)-\S*: \(")
_RCU_DETECTED_BY = re.compile(r"\(detected by (?P<cpu>\d+), t=")
_RCU_TASKS_BLOCKED = re.compile(r"Tasks blocked on level-\d+ rcu_node \(CPUs [\d-]+\): (?P<pids>[P\d ]+)")
_HUNG = re.compile(r"INFO: task (?P<comm>.{1,16}):(?P<pid>\d+) blocked for more than (?P<secs>\d+) seconds\.")
# 6.15+ with CONFIG_DETECT_HUNG_TASK_BLOCKER, and lockdep's list of held locks
_HUNG_OWNER = re.compile(
    r"INFO: task .{1,16}:\d+ (?:is blocked on an? (?P<what>[\w-]+)(?: lock)? likely (?:owned|last held) by task (?P<comm>.{1,16}):(?P<pid>\d+))"
)
_LOCKS_HELD = re.compile(r"^\d+ locks? held by (?P<comm>.{1,16})/(?P<pid>\d+):")
_NULL = re.compile(r"BUG: kernel NULL pointer dereference, address: (?P<addr>[0-9a-fx]+)")
_OLD_NULL = re.compile(r"BUG: unable to handle kernel NULL pointer dereference at (?P<addr>[0-9a-fx]+)")
_PAGE_FAULT = re.compile(
    r"BUG: unable to handle (?:page fault for address|kernel paging request at): ?(?P<addr>[0-9a-fx]+)"
)
_OOPS = re.compile(r"^(?:Oops|Internal error): (?P<what>.*?)\s*\[#(?P<n>\d+)\]")
_BUG_AT = re.compile(r"kernel BUG at (?P<where>\S+?)!")
_GPF = re.compile(r"general protection fault(?:, (?P<why>[^:]+?))?(?:: [0-9a-f]{4})? ?\[#(?P<n>\d+)\]")
_WARNING = re.compile(r"^WARNING: CPU: (?P<cpu>\d+) PID: (?P<pid>\d+) at (?P<where>\S+)")
_MCE = re.compile(r"mce: \[Hardware Error\]: CPU (?P<cpu>\d+): Machine Check(?: Exception)?: (?P<what>.*)")
_MCE_PANIC = re.compile(r"(?:Machine check: |Fatal machine check|MCE: Fatal)")
_EDAC_UE = re.compile(r"EDAC (?P<mc>\S+): \d+ UE (?P<what>.*)")
_OOM_INVOKED = re.compile(r"^(?P<comm>.{1,16}) invoked oom-killer: (?P<what>.*)")
_OOM_KILLED = re.compile(
    r"(?P<memcg>Memory cgroup )?[Oo]ut of memory: Kill(?:ed)? process (?P<pid>\d+) \((?P<comm>.{1,16})\)"
)
_SYSRQ = re.compile(r"^(?:sysrq|SysRq) ?: Trigger a crash")
_NMI = re.compile(
    r"^(?:Uhhuh\. NMI received for unknown reason (?P<reason>[0-9a-f]+) on CPU (?P<cpu>\d+)"
    r"|NMI: (?:PCI system error \(SERR\)|IOCK error)|An NMI occurred)"
)
_NMI_BACKTRACE = re.compile(r"^NMI backtrace for cpu (?P<cpu>\d+)")
_PANIC = re.compile(r"^Kernel panic - not syncing: (?P<reason>.*)$")
_NMI_WATCHDOG_OFF = re.compile(
    r"NMI watchdog: (?:Perf NMI watchdog permanently disabled|disabled)|^(?:Kernel )?[Cc]ommand line:.*\bnmi_watchdog=0\b"
)
_LINUX_VERSION = re.compile(r"^Linux version (?P<rel>\S+)")
_OUT_OF_TREE = re.compile(
    r"^(?P<mod>[\w-]+): (?:loading out-of-tree module taints kernel|module verification failed)"
)
_CUT_HERE = re.compile(r"^-+\[ cut here \]-+$")
_END_TRACE = re.compile(r"^-+\[ end trace")


@dataclass
class _OpenStack:
    line: int
    cpu: int | None
    task: Task | None
    state: str | None
    tainted: str | None
    release: str | None
    ip: Frame | None = None
    trace: list[Frame] = field(default_factory=list)
    in_trace: bool = False
    #: inside ``<NMI>``/``<IRQ>``: a RIP there is the interrupted context's
    interrupt: bool = False

    def freeze(self) -> Stack:
        return Stack(
            line=self.line,
            cpu=self.cpu,
            task=self.task,
            ip=self.ip,
            trace=tuple(self.trace),
            state=self.state,
            tainted=self.tainted,
            release=self.release,
        )


@dataclass
class _Pending:
    """A report waiting for its register dump."""

    finding: Finding
    #: "cpu" (a ``CPU: N`` dump on ``cpu``, or any CPU when None), "task" (a ``task:`` dump)
    wants: str
    cpu: int | None
    #: the report this is an NMI backtrace of (the dump becomes one of its backtraces)
    parent: Finding | None = None


@dataclass
class ParsedLog:
    findings: list[Finding]
    release: str | None = None
    tainted: str | None = None
    suspect_modules: dict[str, str] = field(default_factory=dict)
    nmi_watchdog_off: bool = False
    panic_reason: str | None = None
    lines: int = 0
    #: held locks lockdep printed (comm:pid holding them), for hung tasks
    lock_holders: list[Task] = field(default_factory=list)
    findings_dropped: int = 0
    #: lines longer than MAX_LINE_CHARS, read only to that length
    lines_cut: int = 0


def split_line(raw: str) -> tuple[float | None, str]:
    """(timestamp, text) of one log line; text keeps its leading spaces (frames need them)."""
    match = _PREFIX.match(raw)
    time = None
    if match:
        if match.group("time"):
            time = float(match.group("time"))
        raw = raw[match.end() :]
    return time, raw.rstrip("\r\n")


def parse_frame(text: str) -> tuple[Frame, bool] | None:
    """(frame, reliable) of a trace line, or None when the line is not a frame."""
    match = _FRAME.match(text)
    if not match:
        return None
    return Frame(match["sym"], match["off"], match["mod"]), match["guess"] is None


def _title(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_TITLE else text[: MAX_TITLE - 1] + "…"


class _Reader:
    def __init__(self) -> None:
        self.out = ParsedLog(findings=[])
        self.pending: list[_Pending] = []
        self.stack: _OpenStack | None = None
        self.stack_owner: _Pending | None = None
        self.last_fault: Finding | None = None
        self.last_rcu: Finding | None = None
        self.last_hung: Finding | None = None
        self.backtrace_parent: Finding | None = None

    # -- findings ------------------------------------------------------------------------------
    def add(self, finding: Finding, wants: str | None = "cpu", cpu: int | None = None) -> Finding:
        if len(self.out.findings) >= MAX_FINDINGS:
            # keep the first half and the latest: drop from the middle
            del self.out.findings[MAX_FINDINGS // 2]
            self.out.findings_dropped += 1
        self.out.findings.append(finding)
        if wants:
            self.pending.append(_Pending(finding, wants, cpu if cpu is not None else finding.cpu))
            # only recent reports can still take a dump: a crafted log of headers alone must
            # not grow this without bound
            del self.pending[:-MAX_PENDING]
        return finding

    def take_pending(self, lineno: int, wants: str, cpu: int | None) -> _Pending | None:
        for index in range(len(self.pending) - 1, -1, -1):
            item = self.pending[index]
            if lineno - item.finding.line > DUMP_WINDOW:
                continue
            if item.wants == wants and (item.cpu is None or cpu is None or item.cpu == cpu):
                del self.pending[index]
                return item
        return None

    # -- dumps ---------------------------------------------------------------------------------
    def close_stack(self) -> None:
        if self.stack is None:
            return
        stack = self.stack.freeze()
        owner = self.stack_owner
        self.stack = None
        self.stack_owner = None
        if owner is None:
            return
        if owner.parent is not None:
            # a stall report repeats its NMI backtraces; the first of each CPU is kept
            if all(known.cpu != stack.cpu for known in owner.parent.backtraces):
                owner.parent.backtraces.append(stack)
            # the backtrace "finding" was a placeholder: drop it from the list
            if owner.finding in self.out.findings:
                self.out.findings.remove(owner.finding)
            return
        finding = owner.finding
        finding.stack = stack
        if finding.cpu is None:
            finding.cpu = stack.cpu
        if finding.task is None:
            finding.task = stack.task

    def open_stack(self, lineno: int, stack: _OpenStack, wants: str) -> None:
        self.close_stack()
        self.stack = stack
        self.stack_owner = self.take_pending(lineno, wants, stack.cpu)

    # -- the pass ------------------------------------------------------------------------------
    def feed(self, lineno: int, time: float | None, raw: str) -> None:
        text = raw.strip()
        if not text:
            return
        if self.stack is not None and self.stack_line(raw, text):
            return
        if self.header(lineno, time, text):
            return
        self.fact(text)

    def stack_line(self, raw: str, text: str) -> bool:
        """Lines that belong to the open dump; True when consumed."""
        stack = self.stack
        assert stack is not None
        if _CALL_TRACE.match(text):
            stack.in_trace = True
            return True
        if marker := _MARKER.match(raw):
            if marker["name"] in ("NMI", "IRQ", "SOFTIRQ"):
                stack.interrupt = not raw.strip().startswith("</")
            return True
        rip = _RIP.match(text)
        if rip:
            frame = _FRAME_ANYWHERE.search(rip["rest"])
            # user mode (RIP: 0033) has no symbol and is not where the kernel was
            if frame and not text.startswith("RIP: 0033"):
                if stack.in_trace and stack.interrupt:
                    # a panic in an NMI handler: its own frames say nothing; the RIP inside
                    # <NMI> is where the CPU was, and the frames after it are that context
                    stack.ip = Frame(frame["sym"], frame["off"], frame["mod"])
                    stack.trace.clear()
                elif stack.ip is None:
                    stack.ip = Frame(frame["sym"], frame["off"], frame["mod"])
            return True
        if stack.in_trace:
            parsed = parse_frame(raw)
            if parsed is not None:
                traced, reliable = parsed
                if reliable and len(stack.trace) < MAX_FRAMES:
                    stack.trace.append(traced)
                return True
        return False

    def header(self, lineno: int, time: float | None, text: str) -> bool:
        def finding(kind: FindingKind, **kw: object) -> Finding:
            return Finding(kind=kind, title=_title(text), line=lineno, time=time, **kw)  # type: ignore[arg-type]

        cpu_line = _CPU_LINE.match(text)
        if cpu_line:
            task = Task(cpu_line["comm"].strip(), int(cpu_line["pid"]))
            tainted = (cpu_line["taint"] or "").strip()
            tainted = " ".join(tainted.split())
            self.out.tainted = tainted
            self.out.release = self.out.release or cpu_line["rel"]
            self.open_stack(
                lineno,
                _OpenStack(lineno, int(cpu_line["cpu"]), task, None, tainted, cpu_line["rel"]),
                "cpu",
            )
            return True
        task_line = _TASK_LINE.match(text)
        if task_line:
            task = Task(task_line["comm"].strip(), int(task_line["pid"]))
            self.open_stack(lineno, _OpenStack(lineno, None, task, task_line["state"], None, None), "task")
            return True

        if m := _SOFT_LOCKUP.search(text):
            self.close_stack()
            self.add(
                finding(
                    FindingKind.SOFT_LOCKUP,
                    cpu=int(m["cpu"]),
                    task=Task(m["comm"], int(m["pid"])),
                    detail=f"stuck for {m['secs']} s",
                )
            )
            return True
        if m := _HARD_LOCKUP.search(text):
            self.close_stack()
            self.backtrace_parent = self.add(finding(FindingKind.HARD_LOCKUP, cpu=int(m["cpu"])))
            return True
        if m := (_RCU_SELF.search(text) or _RCU_OTHERS.search(text)):
            self.close_stack()
            self_detected = "self-detected" in text
            rcu = finding(FindingKind.RCU_STALL, detail=m["flavor"])
            # a self-detected stall dumps the reporting CPU's own stack; which CPU that is
            # comes on the next line ("0-...!: (749 ticks this GP)")
            self.last_rcu = self.add(rcu, wants="cpu" if self_detected else None)
            self.backtrace_parent = rcu
            return True
        if self.last_rcu is not None and lineno - self.last_rcu.line < DUMP_WINDOW:
            rcu = self.last_rcu
            if m := _RCU_CPU.match(text):
                cpu = int(m["cpu"])
                if cpu not in rcu.cpus:
                    rcu.cpus = (*rcu.cpus, cpu)
                    for item in self.pending:
                        if item.finding is rcu and item.cpu is None:
                            item.cpu = cpu
                return True
            if m := _RCU_TASKS_BLOCKED.search(text):
                rcu.detail = f"{rcu.detail}; tasks blocked: {m['pids'].strip()}"
                return True
            if m := _RCU_DETECTED_BY.search(text):
                rcu.detail = f"{rcu.detail}; detected by CPU {m['cpu']}"
                return False
        if m := _NMI_BACKTRACE.match(text):
            self.close_stack()
            parent = self.backtrace_parent
            placeholder = Finding(FindingKind.NMI, _title(text), lineno, time, cpu=int(m["cpu"]))
            if parent is not None and lineno - parent.line < 4 * DUMP_WINDOW:
                self.pending.append(_Pending(placeholder, "cpu", int(m["cpu"]), parent=parent))
                del self.pending[:-MAX_PENDING]
            return True
        if m := _HUNG.search(text):
            self.close_stack()
            self.last_hung = self.add(
                finding(
                    FindingKind.HUNG_TASK,
                    task=Task(m["comm"], int(m["pid"])),
                    detail=f"blocked for more than {m['secs']} s",
                ),
                wants="task",
            )
            return True
        if m := _HUNG_OWNER.search(text):
            if self.last_hung is not None:
                self.last_hung.detail = (
                    f"{self.last_hung.detail}; waits on a {m['what']} held by {m['comm']}:{m['pid']}"
                )
            return True
        if m := _LOCKS_HELD.match(text):
            self.out.lock_holders.append(Task(m["comm"], int(m["pid"])))
            return True
        if m := (_NULL.search(text) or _OLD_NULL.search(text)):
            self.close_stack()
            self.last_fault = self.add(
                finding(FindingKind.OOPS, detail=f"NULL pointer dereference at {m['addr']}")
            )
            return True
        if m := _PAGE_FAULT.search(text):
            self.close_stack()
            self.last_fault = self.add(finding(FindingKind.OOPS, detail=f"page fault at {m['addr']}"))
            return True
        if m := _BUG_AT.search(text):
            self.close_stack()
            self.last_fault = self.add(finding(FindingKind.KERNEL_BUG, detail=m["where"]))
            return True
        if m := _GPF.search(text):
            if self.joins_fault(lineno):
                return True
            self.close_stack()
            self.last_fault = self.add(finding(FindingKind.GENERAL_PROTECTION, detail=m["why"]))
            return True
        if m := _OOPS.match(text):
            # "Oops: 0002 [#1]" / "invalid opcode: 0000 [#1]" follow the BUG line that started it
            if self.joins_fault(lineno):
                return True
            self.close_stack()
            self.last_fault = self.add(finding(FindingKind.OOPS, detail=m["what"]))
            return True
        if text.startswith("invalid opcode:") and self.joins_fault(lineno):
            return True
        if m := _WARNING.match(text):
            self.close_stack()
            where = m["where"]
            frame = _FRAME_ANYWHERE.search(text[m.end() :])
            detail = where + (f" in {Frame(frame['sym'], frame['off'], frame['mod'])}" if frame else "")
            self.add(finding(FindingKind.WARNING, cpu=int(m["cpu"]), detail=detail))
            return True
        if m := _MCE.search(text):
            self.close_stack()
            self.add(finding(FindingKind.MACHINE_CHECK, cpu=int(m["cpu"]), detail=m["what"]), wants=None)
            return True
        if m := _EDAC_UE.search(text):
            self.add(
                finding(FindingKind.MACHINE_CHECK, detail=f"uncorrected memory error ({m['mc']})"), wants=None
            )
            return True
        if m := _OOM_INVOKED.match(text):
            self.close_stack()
            self.add(finding(FindingKind.OOM_KILL, detail=f"{m['comm'].strip()} invoked the OOM killer"))
            return True
        if m := _OOM_KILLED.search(text):
            killed = Task(m["comm"], int(m["pid"]))
            scope = "memory cgroup" if m["memcg"] else "system"
            self.add(
                finding(FindingKind.OOM_KILL, task=killed, detail=f"killed by the OOM killer ({scope})"),
                wants=None,
            )
            return True
        if _SYSRQ.match(text):
            self.close_stack()
            self.add(finding(FindingKind.SYSRQ_CRASH))
            return True
        if m := _NMI.match(text):
            self.close_stack()
            nmi_cpu = int(m["cpu"]) if m["cpu"] else None
            reason = m["reason"]
            self.add(
                finding(FindingKind.NMI, cpu=nmi_cpu, detail=f"reason {reason}" if reason else None),
                wants=None,
            )
            return True
        if m := _PANIC.match(text):
            self.close_stack()
            self.out.panic_reason = _title(m["reason"])
            self.add(finding(FindingKind.PANIC, detail=_title(m["reason"])))
            return True
        return False

    def joins_fault(self, lineno: int) -> bool:
        """True when this Oops line continues the fault report just started (no dump yet)."""
        fault = self.last_fault
        return fault is not None and fault.stack is None and lineno - fault.line <= 12

    def fact(self, text: str) -> None:
        if m := _LINUX_VERSION.match(text):
            self.out.release = m["rel"]
        elif _NMI_WATCHDOG_OFF.search(text):
            self.out.nmi_watchdog_off = True
        elif m := _MODULES.match(text):
            for module in _MODULE_FLAGS.finditer(m["list"]):
                flags = module["flags"].replace("+", "").replace("-", "")
                if flags:
                    self.out.suspect_modules[module["name"]] = flags
        elif m := _OUT_OF_TREE.match(text):
            letter = "O" if "out-of-tree" in text else "E"
            flags = self.out.suspect_modules.get(m["mod"], "")
            if letter not in flags:
                self.out.suspect_modules[m["mod"]] = "".join(sorted(flags + letter, key="POEC".find))


def read_log(text: str) -> ParsedLog:
    """Every report in a kernel log, in the order printed, each with its dump."""
    reader = _Reader()
    lineno = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if len(raw) > MAX_LINE_CHARS:
            raw = raw[:MAX_LINE_CHARS]
            reader.out.lines_cut += 1
        time, rest = split_line(raw)
        reader.feed(lineno, time, rest)
    reader.close_stack()
    reader.out.lines = lineno
    return reader.out
