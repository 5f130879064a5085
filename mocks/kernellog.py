"""Kernel logs of hung hosts, as a real kernel prints them, for the mock's kdump.

    log = build_kernel_log("softlockup", hostname="web01", release="6.1.0-21-amd64", uptime=86_412.3)
    log.text        # what vmcore-dmesg saves: boot lines, the hang's reports, the NMI panic
    log.expected    # what the log shows as the cause: kind, CPU, task, culprit module

Every log ends with the panic the BMC's NMI causes (``Uhhuh. NMI received for unknown
reason 3d on CPU 0.``, ``Kernel panic - not syncing: NMI: Not continuing`` and its dump,
then nothing: kdump's kexec comes before anything else is printed).  Before it, per
:class:`HangKind`:

==========  ===================================================================================
hard        nothing: every CPU spins with interrupts off and the NMI watchdog is off
            (``nmi_watchdog=0``), so nothing could report; the NMI lands on the stuck CPU
            (an out-of-tree storage driver, ``exhba``, waiting for its firmware)
softlockup  an RCU stall self-detected on the stuck CPU, then ``watchdog: BUG: soft lockup``
            twice: a writeback worker looping in ext4's block allocator (``[ext4]``)
rcustall    ``rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:`` and the NMI backtrace
            of the stalled CPU: an out-of-tree packet filter (``pktflt``) spinning with
            interrupts off (NMI watchdog off, so no hard-lockup report)
hungtask    ``nfs: server ... not responding``, then ``INFO: task rsync:PID blocked for more
            than N seconds.`` (and a writeback worker) on NFS's commit mutex, twice
oops        ``BUG: kernel NULL pointer dereference`` in jbd2's commit thread with
            ``panic_on_oops=0``: the Oops, the thread dies holding the journal's lock, then
            an RCU stall and soft lockups of a CPU spinning on that lock
==========  ===================================================================================

The line shapes are those of the real logs in ``tests/data/kernel-logs`` (Debian's 6.1
kernel) and of the kernel's own source for what they lack: ``kernel/hung_task.c``
(``INFO: task %s:%d blocked for more than %ld seconds.``, the taint line, the ``echo 0 >``
hint) and ``sched_show_task`` (``task:%-15.15s state:%c stack:%-5lu pid:%-5d ppid:%-6d
flags:0x%08lx``).  Note: after an Oops the hung-task detector is silent (it returns when
the kernel is tainted ``D``), so the oops log's later reports are soft lockups, not hung tasks.

Addresses, PIDs, CPUs and counters come from a generator seeded by the host's name, the
kind and ``seed``: one host's log is the same every time, and consistent within itself
(the task of a report is the one of its dump, taint flags grow as the kernel adds them).
Host names appear only as names, never as addresses; servers are ``*.example.net``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class HangKind(StrEnum):
    HARD = "hard"
    SOFTLOCKUP = "softlockup"
    HUNGTASK = "hungtask"
    RCUSTALL = "rcustall"
    OOPS = "oops"


#: the names ``--hang-kind`` takes
HANG_KINDS: tuple[str, ...] = tuple(kind.value for kind in HangKind)


def hang_kind(name: str) -> HangKind:
    """The kind called ``name``; ValueError naming the known ones."""
    try:
        return HangKind(name.strip().lower())
    except ValueError:
        raise ValueError(f"unknown hang kind {name!r}; known: {', '.join(HANG_KINDS)}") from None


def hang_kinds(names: str | Sequence[str] | None) -> tuple[HangKind | None, ...]:
    """``"hard,oops"`` or a list of names: the kinds to cycle over hosts; "none" for today's log."""
    if names is None:
        return (None,)
    items = names.split(",") if isinstance(names, str) else list(names)
    kinds = tuple(
        None if item.strip().lower() == "none" else hang_kind(item) for item in items if item.strip()
    )
    if not kinds:
        raise ValueError("no hang kind given")
    return kinds


@dataclass(frozen=True)
class Expected:
    """What the log shows as the cause of the hang: what a reader of the log should conclude.

    ``kind`` is the :class:`oob.analysis.model.FindingKind` value of the earliest serious
    report (``hard_hang`` when there is none); ``cpu`` is None for a hung task (the
    report names none).
    """

    kind: str
    culprit: str
    cpu: int | None
    comm: str
    pid: int

    @property
    def task(self) -> str:
        return f"{self.comm}:{self.pid}"


@dataclass(frozen=True)
class KernelLog:
    kind: HangKind
    text: str
    expected: Expected
    release: str
    #: printk time of the NMI panic (seconds since boot)
    panic_time: float


# ---------------------------------------------------------------------------------------------
# What a kernel prints in every dump


#: 6.1's taint letters, in print_tainted()'s order (5.x kernels lack the last one, N)
TAINT_LETTERS = "PFSRMBUDAWCIOELKXTN"
HARDWARE = "HPE ProLiant DL380 Gen10/ProLiant DL380 Gen10, BIOS U30 11/24/2023"
#: Debian prints its package version after the build number ("#1  Debian 6.1.90-1")
DEBIAN_VERSIONS = {"6.1.0-21-amd64": "6.1.90-1", "6.1.0-50-amd64": "6.1.176-1"}
#: the NMI panic's own frames (6.1: real log's offsets)
NMI_PANIC_FRAMES = (
    "dump_stack_lvl+0x44/0x5c",
    "panic+0x118/0x2f4",
    "? _printk+0x68/0x83",
    "nmi_panic.cold+0xc/0xc",
    "unknown_nmi_error.cold+0x3b/0x49",
    "exc_nmi+0x11e/0x150",
    "end_repeat_nmi+0x16/0x67",
)
KTHREAD_TAIL = ("kthread+0xda/0x100", "? kthread_complete_and_exit+0x20/0x20", "ret_from_fork+0x22/0x30")
WORKER_TAIL = (
    "process_one_work+0x1c7/0x380",
    "worker_thread+0x4d/0x380",
    "? rescuer_thread+0x3a0/0x3a0",
    *KTHREAD_TAIL,
)
WRITEBACK_FRAMES = (
    "do_writepages+0xc1/0x1d0",
    "__writeback_single_inode+0x3d/0x350",
    "writeback_sb_inodes+0x1ed/0x4a0",
    "__writeback_inodes_wb+0x4c/0xf0",
    "wb_writeback+0x1d8/0x2b0",
    "wb_workfn+0x2d1/0x4b0",
    *WORKER_TAIL,
)
SYSCALL_FRAMES = (
    "do_syscall_64+0x5d/0xb0",
    "? exit_to_user_mode_prepare+0x44/0x240",
    "? syscall_exit_to_user_mode+0x1e/0x40",
    "? do_syscall_64+0x69/0xb0",
    "entry_SYSCALL_64_after_hwframe+0x6e/0xd8",
)
IDLE_IP = "intel_idle+0x58/0x90"
IDLE_FRAMES = (
    "cpuidle_enter_state+0x8a/0x440",
    "cpuidle_enter+0x29/0x40",
    "do_idle+0x20d/0x2b0",
    "cpu_startup_entry+0x19/0x20",
    "rest_init+0xcb/0xd0",
    "arch_call_rest_init+0xa/0x14",
    "start_kernel+0x6a2/0x6cb",
    "secondary_startup_64_no_verify+0xe5/0xeb",
)
IN_TREE_MODULES = (
    "nfsv4 dns_resolver nfs lockd grace fscache netfs sunrpc intel_rapl_msr intel_rapl_common "
    "skx_edac nfit libnvdimm x86_pkg_temp_thermal intel_powerclamp coretemp kvm_intel kvm irqbypass "
    "ghash_clmulni_intel sha512_ssse3 sha256_ssse3 sha1_ssse3 aesni_intel crypto_simd cryptd rapl "
    "intel_cstate ipmi_ssif intel_uncore mei_me mei ioatdma acpi_ipmi ipmi_si ipmi_devintf "
    "ipmi_msghandler hpilo acpi_power_meter ext4 crc16 mbcache jbd2 sd_mod t10_pi crc64_rocksoft "
    "crc64 crc_t10dif crct10dif_generic ahci libahci libata bnxt_en crct10dif_pclmul crct10dif_common "
    "crc32_pclmul crc32c_intel smartpqi scsi_transport_sas scsi_mod scsi_common dca wmi"
)


@dataclass(frozen=True)
class Task:
    comm: str
    pid: int
    cpu: int | None = None
    #: "Workqueue: ..." under the CPU line, for a kworker
    workqueue: str | None = None

    def __str__(self) -> str:
        return f"{self.comm}:{self.pid}"


@dataclass
class _Log:
    """The lines being written, with the clock and the kernel's running state."""

    rng: random.Random
    release: str
    ncpus: int
    hz: int
    lines: list[str] = field(default_factory=list)
    now: float = 0.0
    taint: set[str] = field(default_factory=set)
    #: per-CPU GS base and per-task stack pages, so that one task's dumps agree
    _gs: dict[int, str] = field(default_factory=dict)
    _stacks: dict[int, str] = field(default_factory=dict)
    #: a CPU spinning in one place shows the same registers in every dump of it
    _regs: dict[tuple[int, str, bool], list[str]] = field(default_factory=dict)
    _direct: int = 0

    def __post_init__(self) -> None:
        # the direct map of a 64 GiB machine: 0xffff888000000000 and up, KASLR moved
        self._direct = int(f"ffff{self.rng.randrange(0x8880, 0x9FFF):04x}00000000", 16)

    # -- time and lines

    def at(self, when: float) -> None:
        self.now = max(self.now, when)

    def say(self, text: str, step: float | None = None) -> None:
        self.lines.append(f"[{self.now:12.6f}] {text}")
        self.now += self.rng.uniform(0.000003, 0.000040) if step is None else step

    def block(self, texts: list[str]) -> None:
        """Lines printed from one interrupt: they carry one time stamp, as in the real logs."""
        for text in texts:
            self.say(text, step=0.0)
        self.now += 0.000150

    # -- what the kernel prints about itself

    def tainted(self) -> str:
        if not self.taint:
            return "Not tainted"
        letters = TAINT_LETTERS if not self.release.startswith(("3.", "4.", "5.")) else TAINT_LETTERS[:-1]
        flags = "".join(
            letter if letter in self.taint else ("G" if letter == "P" else " ") for letter in letters
        )
        return f"Tainted: {flags}"

    def version(self) -> str:
        debian = DEBIAN_VERSIONS.get(self.release)
        return f"#1  Debian {debian}" if debian else "#1"

    def cpu_line(self, task: Task, cpu: int) -> str:
        return f"CPU: {cpu} PID: {task.pid} Comm: {task.comm[:20]} Kdump: loaded {self.tainted()} {self.release} {self.version()}"

    def header(self, task: Task, cpu: int) -> list[str]:
        lines = [self.cpu_line(task, cpu), f"Hardware name: {HARDWARE}"]
        if task.workqueue:
            lines.append(f"Workqueue: {task.workqueue}")
        return lines

    # -- numbers that look like a machine's

    def direct(self) -> str:
        return f"{self._direct + self.rng.randrange(0, 0x7FFFFFFF) * 8:016x}"

    def gs(self, cpu: int) -> str:
        if cpu not in self._gs:
            self._gs[cpu] = f"{self._direct + 0x7F000000 + cpu * 0x40000 + 0x1E00000:016x}"
        return self._gs[cpu]

    def stack(self, task: Task) -> int:
        if task.pid not in self._stacks:
            self._stacks[task.pid] = (
                f"{0xFFFFA00000000000 + self.rng.randrange(0x10000, 0x3FFFFF) * 0x4000:016x}"
            )
        return int(self._stacks[task.pid], 16)

    def small(self) -> str:
        return f"{self.rng.choice((0, 0, 1, 2, 3, 0x246, self.rng.randrange(0, 0x10000))):016x}"

    def value(self) -> str:
        return self.direct() if self.rng.random() < 0.5 else self.small()

    def code(self) -> str:
        before = " ".join(f"{self.rng.randrange(256):02x}" for _ in range(42))
        after = " ".join(f"{self.rng.randrange(256):02x}" for _ in range(21))
        return f"Code: {before} <{self.rng.randrange(256):02x}> {after}"

    def regs(
        self, task: Task, cpu: int, ip: str, eflags: str, full: bool, cr2: str | None = None
    ) -> list[str]:
        """``__show_regs``: SHOW_REGS_SHORT (in an NMI panic) or ALL (show_regs, an Oops)."""
        key = (task.pid, ip, full)
        if key not in self._regs:
            self._regs[key] = self._new_regs(task, cpu, ip, eflags, full, cr2)
        return self._regs[key]

    def _new_regs(self, task: Task, cpu: int, ip: str, eflags: str, full: bool, cr2: str | None) -> list[str]:
        sp = self.stack(task) + self.rng.randrange(0x3000, 0x3F00) // 8 * 8
        values = [self.value() for _ in range(15)]
        names = "RAX RBX RCX RDX RSI RDI RBP R08 R09 R10 R11 R12 R13 R14 R15".split()
        lines = [f"RIP: 0010:{ip}", self.code(), f"RSP: 0018:{sp:016x} EFLAGS: {eflags}"]
        for row in range(5):
            lines.append(" ".join(f"{names[row * 3 + i]}: {values[row * 3 + i]}" for i in range(3)))
        if full:
            cr2 = cr2 or f"{self.rng.randrange(0x550000000000, 0x560000000000):016x}"
            lines += [
                f"FS:  0000000000000000(0000) GS:{self.gs(cpu)}(0000) knlGS:0000000000000000",
                "CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033",
                f"CR2: {cr2} CR3: {self.rng.randrange(0x1000, 0x80000) * 0x1000:016x} CR4: 00000000007706e0",
            ]
        return lines

    def user_regs(self, syscall: int) -> list[str]:
        """The syscall frame that ends a user task's trace (``RIP: 0033:``)."""
        ip = 0x7F0000000000 + self.rng.randrange(0x1000000000, 0xFFFFFFFFFF)
        sp = 0x7FFC00000000 + self.rng.randrange(0x10000000, 0x3FFFFFFF) // 8 * 8
        heap = 0x55D000000000 + self.rng.randrange(0, 0x2FFFFFFFF) * 0x10
        user = [
            f"{self.rng.choice((0, 1, 3, 8, heap + self.rng.randrange(0, 0x100000) * 8, sp + 0x58)):016x}"
            for _ in range(12)
        ]
        return [
            f"RIP: 0033:0x{ip:x}",
            self.code(),
            f"RSP: 002b:{sp:016x} EFLAGS: 00000293 ORIG_RAX: {syscall:016x}",
            f"RAX: ffffffffffffffda RBX: {user[0]} RCX: {ip:016x}",
            f"RDX: {user[1]} RSI: {user[2]} RDI: {user[3]}",
            f"RBP: {user[4]} R08: {user[5]} R09: {user[6]}",
            f"R10: {user[7]} R11: 0000000000000293 R12: {user[8]}",
            f"R13: {user[9]} R14: {user[10]} R15: {user[11]}",
        ]

    def trace(self, frames: tuple[str, ...], user: list[str] | None = None) -> list[str]:
        return ["Call Trace:", " <TASK>", *(f" {frame}" for frame in frames), *(user or []), " </TASK>"]

    # -- reports

    def show_regs(self, task: Task, cpu: int, ip: str, frames: tuple[str, ...], eflags: str) -> list[str]:
        """What show_regs() prints: a soft lockup, a self-detected stall, an NMI backtrace."""
        return [*self.header(task, cpu), *self.regs(task, cpu, ip, eflags, full=True), *self.trace(frames)]

    def modules(self, out_of_tree: str | None, loading: str | None = None) -> str:
        """``Modules linked in:`` as print_modules() writes it, newest first."""
        first = []
        if out_of_tree:
            first.append(f"{out_of_tree}(OE{'+' if loading == out_of_tree else ''})")
        return "Modules linked in: " + " ".join([*first, IN_TREE_MODULES])

    def nmi_panic(self, task: Task, cpu: int, ip: str, frames: tuple[str, ...], eflags: str) -> None:
        """The BMC's NMI: arch/x86/kernel/nmi.c's unknown_nmi_error() with unknown_nmi_panic=1."""
        self.say(f"Uhhuh. NMI received for unknown reason 3d on CPU {cpu}.")
        self.say("Kernel panic - not syncing: NMI: Not continuing")
        for line in [*self.header(task, cpu), "Call Trace:", " <NMI>", *(f" {f}" for f in NMI_PANIC_FRAMES)]:
            self.say(line)
        for line in self.regs(task, cpu, ip, eflags, full=False):
            self.say(line)
        ip_frame = ip.split(" ")[0]
        module = f" {ip.split(' ')[1]}" if " " in ip else ""
        for line in (f" ? {ip_frame}{module}", f" ? {ip_frame}{module}", " </NMI>", " <TASK>"):
            self.say(line)
        for frame in frames:
            self.say(f" {frame}")
        self.say(" </TASK>")

    def self_detected_stall(
        self, task: Task, cpu: int, ip: str, frames: tuple[str, ...], seconds: float
    ) -> None:
        """kernel/rcu/tree_stall.h print_cpu_stall(): the stalled CPU reports itself."""
        ticks = int(seconds * self.hz)
        self.say("rcu: INFO: rcu_preempt self-detected stall on CPU")
        self.say(
            f"rcu: \t{cpu}-....: ({ticks - 1} ticks this GP) idle={self.rng.randrange(0x10000):04x}/1/0x4000000000000000 "
            f"softirq={(s := self.rng.randrange(10_000, 3_000_000))}/{s} fqs={ticks // 2 - self.rng.randrange(5)}"
        )
        self.say(
            f"\t(t={ticks} jiffies g={self.rng.randrange(1_000_000, 90_000_000)} q={self.rng.randrange(100, 9000)} ncpus={self.ncpus})"
        )
        self.block(self.show_regs(task, cpu, ip, frames, "00000246"))


# ---------------------------------------------------------------------------------------------
# The log


def build_kernel_log(
    kind: HangKind | str,
    *,
    hostname: str = "host01",
    release: str = "6.1.0-21-amd64",
    uptime: float = 86_412.345678,
    seed: int = 0,
) -> KernelLog:
    """The kernel log of ``hostname`` hung the ``kind`` way, its NMI panic at ``uptime`` s."""
    kind = hang_kind(kind) if isinstance(kind, str) else kind
    rng = random.Random(f"{hostname}/{kind.value}/{seed}")
    ncpus = rng.choice((16, 24, 32, 48))
    log = _Log(rng, release, ncpus, hz=1000 if ".el" in release else 250)
    # the hang starts this long before the NMI; the host was up at least that long before
    span = {
        HangKind.HARD: 40.0,
        HangKind.SOFTLOCKUP: 60.0,
        HangKind.RCUSTALL: 35.0,
        HangKind.HUNGTASK: 265.0,
        HangKind.OOPS: 60.0,
    }[kind]
    uptime = max(uptime, span + 900.0)
    hang = uptime - span
    out_of_tree = {HangKind.HARD: "exhba", HangKind.RCUSTALL: "pktflt"}.get(kind)
    _boot(log, hostname, kind, out_of_tree)
    _chatter(log, hang, kind)
    log.at(hang)
    expected = _SCENARIOS[kind](log, hang, uptime, out_of_tree)
    return KernelLog(kind, "\n".join(log.lines) + "\n", expected, release, uptime)


def _boot(log: _Log, hostname: str, kind: HangKind, out_of_tree: str | None) -> None:
    rng, release = log.rng, log.release
    root = f"UUID={rng.randbytes(4).hex()}-{rng.randbytes(2).hex()}-{rng.randbytes(2).hex()}-{rng.randbytes(2).hex()}-{rng.randbytes(6).hex()}"
    no_nmi_watchdog = " nmi_watchdog=0" if kind in (HangKind.HARD, HangKind.RCUSTALL) else ""
    debian = DEBIAN_VERSIONS.get(release)
    if debian:
        banner = (
            f"Linux version {release} (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, "
            f"GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian {debian} (2024-05-03)"
        )
        command = f"BOOT_IMAGE=/boot/vmlinuz-{release} root={root} ro quiet crashkernel=384M-:256M"
    elif ".el" in release:
        banner = (
            f"Linux version {release} (mockbuild@x86-vm-07.build.eng.example.com) (gcc (GCC) 11.4.1 20231218, "
            "GNU ld version 2.35.2-43.el9) #1 SMP PREEMPT_DYNAMIC Thu Apr 4 20:44:13 EDT 2024"
        )
        command = f"BOOT_IMAGE=(hd0,gpt2)/vmlinuz-{release} root=/dev/mapper/rhel-root ro crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M"
    else:
        banner = (
            f"Linux version {release} (geeko@buildhost) (gcc (SUSE Linux) 7.5.0, GNU ld (GNU Binutils; "
            "SUSE Linux Enterprise 15) 2.41.0.20230908-150100.7.46) #1 SMP PREEMPT_DYNAMIC Tue Oct  1 09:04:43 UTC 2024"
        )
        command = f"BOOT_IMAGE=/boot/vmlinuz-{release} root={root} splash=silent quiet crashkernel=256M,high crashkernel=72M,low"
    log.at(0.0)
    for line in (
        banner,
        f"Command line: {command}{no_nmi_watchdog}",
        f"DMI: {HARDWARE}",
        "tsc: Detected 3000.000 MHz processor",
        "Reserving 256MB of memory at 3072MB for crashkernel (System RAM: 65536MB)",
    ):
        log.say(line, step=0.0)
    log.at(0.412 + rng.uniform(0, 0.05))
    log.say(f"smp: Brought up 2 nodes, {log.ncpus} CPUs")
    log.say("smpboot: Max logical packages: 2")
    log.at(1.2 + rng.uniform(0, 0.1))
    if not no_nmi_watchdog:
        log.say("NMI watchdog: Enabled. Permanently consumes one hw-PMU counter.")
    log.at(3.1 + rng.uniform(0, 0.4))
    log.say(f"systemd[1]: Hostname set to <{hostname}>.")
    log.at(4.6 + rng.uniform(0, 0.4))
    log.say("EXT4-fs (sda2): mounted filesystem with ordered data mode. Quota mode: none.")
    if out_of_tree:
        log.at(6.2 + rng.uniform(0, 0.4))
        log.say(f"{out_of_tree}: loading out-of-tree module taints kernel.")
        log.say(
            f"{out_of_tree}: module verification failed: signature and/or required key missing - tainting kernel"
        )
        log.taint |= {"O", "E"}
        banner_line = {
            "exhba": "exhba 0000:5e:00.0: firmware 7.21.0 build 4 ready, 2 ports",
            "pktflt": "pktflt: 4 tables, gc every 500 ms",
        }
        log.say(banner_line[out_of_tree])
    log.at(9.8 + rng.uniform(0, 0.5))
    log.say("bnxt_en 0000:5d:00.0 eno1np0: NIC Link is Up, 25000 Mbps full duplex, Flow control: none")
    if kind is HangKind.HUNGTASK:
        log.at(14.2 + rng.uniform(0, 0.5))
        log.say("RPC: Registered tcp transport module.")
        log.say("NFS: Registering the id_resolver key type")
        log.say("FS-Cache: Netfs 'nfs' registered for caching")


def _chatter(log: _Log, hang: float, kind: HangKind) -> None:
    """Ordinary lines in the host's life before the hang: nothing that explains it."""
    rng = log.rng
    log.at(hang - rng.uniform(3000, 6000) if hang > 7000 else hang / 2)
    log.say("bnxt_en 0000:5d:00.0 eno1np0: NIC Link is Down")
    log.at(log.now + rng.uniform(2, 4))
    log.say("bnxt_en 0000:5d:00.0 eno1np0: NIC Link is Up, 25000 Mbps full duplex, Flow control: none")
    log.at(hang - rng.uniform(60, 300))
    log.say(
        f"perf: interrupt took too long ({rng.randrange(2600, 4000)} > {rng.randrange(2400, 2600)}), lowering kernel.perf_event_max_sample_rate to {rng.choice((63000, 50000, 40000))}"
    )


def _cpu(log: _Log, not_zero: bool = True) -> int:
    return log.rng.randrange(1 if not_zero else 0, log.ncpus)


def _kworker(log: _Log, pid: int, workqueue: str | None = None, cpu: int | None = None) -> Task:
    return Task(f"kworker/u{log.ncpus * 2}:{log.rng.randrange(0, 9)}", pid, cpu, workqueue)


def _idle_panic(log: _Log, when: float) -> None:
    """The NMI lands on CPU 0, idle: the CPUs the hang holds are elsewhere."""
    log.at(when)
    log.nmi_panic(Task("swapper/0", 0), 0, IDLE_IP, IDLE_FRAMES, "00000246")


def _hard(log: _Log, hang: float, uptime: float, module: str | None) -> Expected:
    task = Task("scsi_eh_0", log.rng.randrange(280, 420))
    frames = (
        "exhba_reset_controller+0x1c4/0x2f0 [exhba]",
        "exhba_eh_host_reset+0x3e/0x80 [exhba]",
        "scsi_try_host_reset+0x43/0x110 [scsi_mod]",
        "scsi_eh_ready_devs+0x68c/0xa70 [scsi_mod]",
        "scsi_error_handler+0x3ea/0x4c0 [scsi_mod]",
        "? scsi_eh_get_sense+0x200/0x200 [scsi_mod]",
        *KTHREAD_TAIL,
    )
    log.at(uptime)
    log.nmi_panic(task, 0, "exhba_fw_wait_ready+0x5a/0xb0 [exhba]", frames, "00000046")
    return Expected("hard_hang", "exhba", 0, task.comm, task.pid)


def _softlockup(log: _Log, hang: float, uptime: float, module: str | None) -> Expected:
    cpu = _cpu(log)
    task = _kworker(log, log.rng.randrange(20_000, 90_000), "writeback wb_workfn (flush-8:0)", cpu)
    ip = "ext4_mb_good_group+0x41/0x110 [ext4]"
    frames = (
        "ext4_mb_regular_allocator+0x4ae/0xe80 [ext4]",
        "? ext4_mb_normalize_request.constprop.0+0x211/0x4a0 [ext4]",
        "ext4_mb_new_blocks+0x8dd/0xf90 [ext4]",
        "? ext4_find_extent+0x1c8/0x420 [ext4]",
        "ext4_ext_map_blocks+0x6f5/0x18f0 [ext4]",
        "ext4_map_blocks+0x1a2/0x620 [ext4]",
        "ext4_writepages+0x7bb/0xdc0 [ext4]",
        *WRITEBACK_FRAMES,
    )
    log.at(hang + 21.0 + log.rng.uniform(0, 0.3))
    log.self_detected_stall(task, cpu, ip, frames, 21.0)
    stuck = 22 + log.rng.randrange(0, 2)
    for report in range(2):
        log.at(hang + stuck + 0.4 + report * (stuck + 2))
        log.say(f"watchdog: BUG: soft lockup - CPU#{cpu} stuck for {stuck}s! [{task.comm}:{task.pid}]")
        log.say(log.modules(None))
        log.block(log.show_regs(task, cpu, ip, frames, "00000246"))
        log.taint.add("L")
    _idle_panic(log, uptime)
    return Expected("soft_lockup", "ext4", cpu, task.comm, task.pid)


def _rcustall(log: _Log, hang: float, uptime: float, module: str | None) -> Expected:
    cpu = _cpu(log)
    task = Task("pktflt_gc", log.rng.randrange(900, 2400), cpu)
    ticks = int(21 * log.hz) + log.rng.randrange(1, 5)
    log.at(hang + 21.0 + log.rng.uniform(0, 0.3))
    log.say("rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:")
    softirq = log.rng.randrange(100_000, 3_000_000)
    log.say(
        f"rcu: \t{cpu}-...0: (0 ticks this GP) idle={log.rng.randrange(0x10000):04x}/1/0x4000000000000000 "
        f"softirq={softirq}/{softirq + 1} fqs={ticks // 2 - log.rng.randrange(1, 40)}"
    )
    log.say(
        f"\t(detected by 0, t={ticks} jiffies, g={log.rng.randrange(1_000_000, 90_000_000)}, "
        f"q={log.rng.randrange(100, 9000)} ncpus={log.ncpus})"
    )
    log.say(f"Sending NMI from CPU 0 to CPUs {cpu}:")
    log.say(f"NMI backtrace for cpu {cpu}")
    frames = (
        "pktflt_gc_thread+0x5d/0xb0 [pktflt]",
        "? pktflt_table_gc+0x1f0/0x1f0 [pktflt]",
        *KTHREAD_TAIL,
    )
    log.block(log.show_regs(task, cpu, "pktflt_table_gc+0x8c/0x1f0 [pktflt]", frames, "00000046"))
    log.say(
        f"INFO: NMI handler (nmi_cpu_backtrace_handler) took too long to run: {log.rng.uniform(1, 6):.3f} msecs"
    )
    _idle_panic(log, uptime)
    return Expected("rcu_stall", "pktflt", cpu, task.comm, task.pid)


def _hung_report(
    log: _Log,
    task: Task,
    seconds: int,
    ppid: int,
    flags: int,
    frames: tuple[str, ...],
    user: list[str] | None,
) -> None:
    """kernel/hung_task.c check_hung_task() and sched_show_task() (6.1)."""
    log.say(f"INFO: task {task.comm}:{task.pid} blocked for more than {seconds} seconds.")
    log.say(f"      {log.tainted()} {log.release} {log.version().split()[0]}")
    log.say('"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.')
    log.say(
        f"task:{task.comm[:15]:<15} state:D stack:0     pid:{task.pid:<5} ppid:{ppid:<6} flags:0x{flags:08x}"
    )
    if task.workqueue:
        log.say(f"Workqueue: {task.workqueue}")
    for line in log.trace(frames, user):
        log.say(line)


def _hungtask(log: _Log, hang: float, uptime: float, module: str | None) -> Expected:
    rsync = Task("rsync", log.rng.randrange(30_000, 60_000))
    worker = _kworker(log, rsync.pid + log.rng.randrange(200, 4000), "writeback wb_workfn (flush-0:52)")
    commit_wait = (
        "__schedule+0x34d/0x9e0",
        "schedule+0x5a/0xd0",
        "schedule_preempt_disabled+0x14/0x30",
        "__mutex_lock.constprop.0+0x3b4/0x700",
        "nfs_scan_commit+0x2f/0xe0 [nfs]",
        "__nfs_commit_inode+0x8a/0x1b0 [nfs]",
    )
    rsync_frames = (
        *commit_wait,
        "nfs_file_fsync+0xa5/0x1c0 [nfs]",
        "__x64_sys_fsync+0x3b/0x70",
        *SYSCALL_FRAMES,
    )
    worker_frames = (*commit_wait, "nfs_write_inode+0x5c/0xa0 [nfs]", *WRITEBACK_FRAMES[1:])
    rsync_user = log.user_regs(0x4A)
    log.at(hang + 3.0)
    for _ in range(2):
        log.say("nfs: server nfs01.example.net not responding, still trying")
        log.at(log.now + log.rng.uniform(0.001, 0.2))
    for base in (120, 241):  # khungtaskd looks every hung_task_timeout_secs
        log.at(hang + base + 2 + log.rng.uniform(0, 1))
        seconds = base + log.rng.randrange(1, 4)
        _hung_report(
            log, rsync, seconds, rsync.pid - log.rng.randrange(1, 9), 0x00000002, rsync_frames, rsync_user
        )
        _hung_report(log, worker, seconds - 1, 2, 0x00004000, worker_frames, None)
    _idle_panic(log, uptime)
    return Expected("hung_task", "nfs", None, rsync.comm, rsync.pid)


def _oops(log: _Log, hang: float, uptime: float, module: str | None) -> Expected:
    cpu = _cpu(log)
    jbd2 = Task("jbd2/sda2-8", log.rng.randrange(600, 900), cpu)
    ip = "jbd2_journal_commit_transaction+0x3c8/0x1b70 [jbd2]"
    frames = (
        "? lock_timer_base+0x61/0x80",
        "? try_to_del_timer_sync+0x4f/0x80",
        "kjournald2+0xab/0x270 [jbd2]",
        "? cpuacct_percpu_seq_show+0x20/0x20",
        "? commit_timeout+0x10/0x10 [jbd2]",
        *KTHREAD_TAIL,
    )
    # arch/x86/mm/fault.c page_fault_oops(), then oops_end() with panic_on_oops=0
    log.say("BUG: kernel NULL pointer dereference, address: 0000000000000008")
    log.say("#PF: supervisor read access in kernel mode")
    log.say("#PF: error_code(0x0000) - not-present page")
    log.say("PGD 0 P4D 0 ")
    log.say("Oops: 0000 [#1] PREEMPT SMP NOPTI")
    regs = log.regs(jbd2, cpu, ip, "00010246", full=True, cr2="0000000000000008")
    for line in [*log.header(jbd2, cpu), *regs, *log.trace(frames)]:
        log.say(line)
    log.say(log.modules(None))
    log.say("CR2: 0000000000000008")
    log.say("---[ end trace 0000000000000000 ]---")
    log.taint.add("D")
    for line in regs:  # the "executive summary" oops_end() prints again
        log.say(line)
    log.say(f"note: {jbd2.comm}[{jbd2.pid}] exited with preempt_count 1")
    # the dead thread held the journal's j_state_lock: the next writer spins on it for ever
    other = log.rng.choice([n for n in range(1, log.ncpus) if n != cpu])
    writer = _kworker(log, log.rng.randrange(20_000, 90_000), "writeback wb_workfn (flush-8:0)", other)
    spin_ip = "queued_read_lock_slowpath+0x5e/0x130"
    spin_frames = (
        "start_this_handle+0xa1/0x500 [jbd2]",
        "? kmem_cache_alloc+0x17b/0x340",
        "jbd2__journal_start+0xfb/0x1f0 [jbd2]",
        "__ext4_journal_start_sb+0x101/0x120 [ext4]",
        "ext4_writepages+0x30e/0xdc0 [ext4]",
        *WRITEBACK_FRAMES,
    )
    log.at(hang + 23.0 + log.rng.uniform(0, 0.3))
    log.self_detected_stall(writer, other, spin_ip, spin_frames, 21.0)
    log.at(log.now + 1.9)
    log.say(f"watchdog: BUG: soft lockup - CPU#{other} stuck for 22s! [{writer.comm}:{writer.pid}]")
    log.say(log.modules(None))
    log.block(log.show_regs(writer, other, spin_ip, spin_frames, "00000246"))
    log.taint.add("L")
    _idle_panic(log, uptime)
    return Expected("oops", "jbd2", cpu, jbd2.comm, jbd2.pid)


_SCENARIOS = {
    HangKind.HARD: _hard,
    HangKind.SOFTLOCKUP: _softlockup,
    HangKind.RCUSTALL: _rcustall,
    HangKind.HUNGTASK: _hungtask,
    HangKind.OOPS: _oops,
}
