"""Reports the real logs do not hold, in the shapes the kernel's sources print them.

Each text follows the format strings of Linux 6.1 (``kernel/hung_task.c``,
``kernel/watchdog_hld.c``, ``arch/x86/kernel/dumpstack.c``, ``lib/bug.c``/``kernel/panic.c``,
``arch/x86/kernel/traps.c``, ``mm/oom_kill.c``, ``arch/x86/kernel/cpu/mce/core.c``), with the
CPU/task lines of ``dump_stack`` and ``sched_show_task``.
"""

from __future__ import annotations

from oob.analysis import Confidence, FindingKind, analyze_text

CPU_LINE = "CPU: {cpu} PID: {pid} Comm: {comm} Kdump: loaded Tainted: G        W          6.1.0-18-amd64 #1  Debian 6.1.76-1"
NMI_PANIC = """[ 900.100000] Uhhuh. NMI received for unknown reason 3d on CPU 0.
[ 900.100010] Do you have a strange power saving mode enabled?
[ 900.100020] Kernel panic - not syncing: NMI: Not continuing
[ 900.100030] CPU: 0 PID: 0 Comm: swapper/0 Kdump: loaded Not tainted 6.1.0-18-amd64 #1  Debian 6.1.76-1
[ 900.100040] Call Trace:
[ 900.100050]  <NMI>
[ 900.100060]  dump_stack_lvl+0x44/0x5c
[ 900.100070]  panic+0x118/0x2f4
[ 900.100080]  nmi_panic.cold+0xc/0xc
[ 900.100090] RIP: 0010:default_idle+0xb/0x10
[ 900.100100]  </NMI>
[ 900.100110]  <TASK>
[ 900.100120]  default_idle_call+0x2c/0xe0
[ 900.100130]  do_idle+0x217/0x2a0
[ 900.100140]  </TASK>
"""

HUNG_TASK = """[ 1230.123456] INFO: task kworker/u16:3:4021 blocked for more than 120 seconds.
[ 1230.123470]       Not tainted 6.1.0-18-amd64 #1 Debian 6.1.76-1
[ 1230.123480] "echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.
[ 1230.123490] task:kworker/u16:3   state:D stack:0     pid:4021  ppid:2      flags:0x00004000
[ 1230.123500] Workqueue: writeback wb_workfn (flush-0:52)
[ 1230.123510] Call Trace:
[ 1230.123520]  <TASK>
[ 1230.123530]  __schedule+0x34d/0x9e0
[ 1230.123540]  schedule+0x5a/0xd0
[ 1230.123550]  schedule_preempt_disabled+0x11/0x20
[ 1230.123560]  __mutex_lock.constprop.0+0x399/0x700
[ 1230.123570]  ? nfs_file_fsync+0x2a/0x1a0 [nfs]
[ 1230.123580]  nfs_start_io_write+0x17/0x50 [nfs]
[ 1230.123590]  nfs_file_write+0x96/0x2c0 [nfs]
[ 1230.123600]  vfs_write+0x2cb/0x3f0
[ 1230.123610]  ksys_write+0x6b/0xf0
[ 1230.123620]  do_syscall_64+0x5d/0xb0
[ 1230.123630]  entry_SYSCALL_64_after_hwframe+0x6e/0xd8
[ 1230.123640]  </TASK>
"""

KERNEL_BUG = """[  55.000001] ------------[ cut here ]------------
[  55.000002] kernel BUG at fs/ext4/inode.c:1843!
[  55.000003] invalid opcode: 0000 [#1] PREEMPT SMP NOPTI
[  55.000004] CPU: 3 PID: 812 Comm: postgres Kdump: loaded Not tainted 6.1.0-18-amd64 #1  Debian 6.1.76-1
[  55.000005] Hardware name: Dell Inc. PowerEdge R650/0PYXKY, BIOS 1.6.5 04/15/2022
[  55.000006] RIP: 0010:ext4_writepage+0x3c1/0x3d0 [ext4]
[  55.000007] Code: 0f 0b 0f 0b
[  55.000008] RSP: 0018:ffffb0c1c2e3f9d8 EFLAGS: 00010246
[  55.000009] Call Trace:
[  55.000010]  <TASK>
[  55.000011]  ? die+0x32/0x80
[  55.000012]  __writepage+0x13/0x60
[  55.000013]  write_cache_pages+0x180/0x4a0
[  55.000014]  ext4_writepages+0x6f/0x100 [ext4]
[  55.000015]  do_writepages+0xbb/0x1c0
[  55.000016]  </TASK>
[  55.000017] Modules linked in: ext4 crc16 mbcache jbd2 nvme nvme_core
[  55.000018] ---[ end trace 0000000000000000 ]---
[  55.000019] Kernel panic - not syncing: Fatal exception
"""

GPF = """[  12.000001] general protection fault, probably for non-canonical address 0xdead000000000122: 0000 [#1] PREEMPT SMP NOPTI
[  12.000002] CPU: 1 PID: 77 Comm: kworker/1:2 Kdump: loaded Tainted: P           O       6.1.0-18-amd64 #1  Debian 6.1.76-1
[  12.000003] RIP: 0010:nv_list_del+0x12/0x40 [nvidia]
[  12.000004] Call Trace:
[  12.000005]  <TASK>
[  12.000006]  nv_close_device+0x88/0x120 [nvidia]
[  12.000007]  process_one_work+0x1c7/0x380
[  12.000008]  </TASK>
[  12.000009] Modules linked in: nvidia(PO) drm
"""

HARD_LOCKUP = """[ 300.000001] NMI watchdog: Watchdog detected hard LOCKUP on cpu 2
[ 300.000002] Modules linked in: mlx5_core tls
[ 300.000003] CPU: 2 PID: 0 Comm: swapper/2 Kdump: loaded Not tainted 6.1.0-18-amd64 #1  Debian 6.1.76-1
[ 300.000004] RIP: 0010:native_queued_spin_lock_slowpath+0x1e2/0x2c0
[ 300.000005] Call Trace:
[ 300.000006]  <IRQ>
[ 300.000007]  _raw_spin_lock_irqsave+0x39/0x50
[ 300.000008]  mlx5_eq_comp_int+0x2a/0x140 [mlx5_core]
[ 300.000009]  __handle_irq_event_percpu+0x46/0x190
[ 300.000010]  </IRQ>
[ 300.000011] Kernel panic - not syncing: Hard LOCKUP
"""

OOM = """[ 500.000001] stress invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0
[ 500.000002] CPU: 1 PID: 2233 Comm: stress Kdump: loaded Not tainted 6.1.0-18-amd64 #1  Debian 6.1.76-1
[ 500.000003] Call Trace:
[ 500.000004]  <TASK>
[ 500.000005]  dump_stack_lvl+0x44/0x5c
[ 500.000006]  dump_header+0x4a/0x211
[ 500.000007]  oom_kill_process.cold+0xb/0x10
[ 500.000008]  out_of_memory+0x1fd/0x4c0
[ 500.000009]  </TASK>
[ 500.000010] Out of memory: Killed process 2233 (stress) total-vm:8392720kB, anon-rss:7890168kB, file-rss:4kB, shmem-rss:0kB, UID:0 pgtables:15468kB oom_score_adj:0
"""

MCE = """[ 800.000001] mce: [Hardware Error]: CPU 5: Machine Check Exception: 5 Bank 7: be00000000800400
[ 800.000002] mce: [Hardware Error]: RIP !INEXACT! 10:<ffffffff81a3b2c5> {intel_idle+0x85/0x130}
[ 800.000003] mce: [Hardware Error]: TSC 2f5f5a4d3a ADDR 1234abc000 MISC 86
[ 800.000004] mce: [Hardware Error]: Run the above through 'mcelog --ascii'
[ 800.000005] Kernel panic - not syncing: Fatal machine check
"""

WARNING = """[ 100.000001] ------------[ cut here ]------------
[ 100.000002] WARNING: CPU: 3 PID: 901 at net/core/dev.c:5123 __netif_receive_skb_core+0x9a/0x1010
[ 100.000003] Modules linked in: bonding
[ 100.000004] CPU: 3 PID: 901 Comm: ksoftirqd/3 Kdump: loaded Not tainted 6.1.0-18-amd64 #1  Debian 6.1.76-1
[ 100.000005] RIP: 0010:__netif_receive_skb_core+0x9a/0x1010
[ 100.000006] ---[ end trace 0000000000000000 ]---
"""


def test_hung_task_in_d_state_points_at_nfs() -> None:
    analysis = analyze_text(HUNG_TASK + NMI_PANIC)
    (hung,) = [f for f in analysis.findings if f.kind is FindingKind.HUNG_TASK]
    assert str(hung.task) == "kworker/u16:3:4021"
    assert hung.stack is not None and hung.stack.state == "D"
    # the "?" guess is not part of the trace
    assert [str(f) for f in hung.stack.trace][3:5] == ["__mutex_lock.constprop.0", "nfs_start_io_write [nfs]"]
    verdict = analysis.verdict
    assert verdict.kind is FindingKind.HUNG_TASK
    assert verdict.culprit == "nfs"
    assert verdict.headline == "hung task in nfs"
    assert verdict.confidence is Confidence.MEDIUM
    assert any("victim" in reason for reason in verdict.reasons)


def test_hung_task_names_the_lock_holder_when_the_kernel_does() -> None:
    holder = "[ 1230.123650] INFO: task kworker/u16:3:4021 is blocked on a mutex likely owned by task rsync:3990.\n"
    analysis = analyze_text(HUNG_TASK + holder + NMI_PANIC)
    (hung,) = [f for f in analysis.findings if f.kind is FindingKind.HUNG_TASK]
    assert hung.detail == "blocked for more than 120 s; waits on a mutex held by rsync:3990"


def test_kernel_bug_with_its_invalid_opcode_line_is_one_report() -> None:
    analysis = analyze_text(KERNEL_BUG)
    bugs = [f for f in analysis.findings if f.kind is not FindingKind.PANIC]
    assert [f.kind for f in bugs] == [FindingKind.KERNEL_BUG]
    verdict = analysis.verdict
    assert (verdict.kind, verdict.culprit, verdict.cpu, str(verdict.task)) == (
        FindingKind.KERNEL_BUG,
        "ext4",
        3,
        "postgres:812",
    )
    assert verdict.ip is not None and verdict.ip.symbol == "ext4_writepage"
    assert "fs/ext4/inode.c:1843" in verdict.summary
    assert analysis.facts.panic_reason == "Fatal exception"


def test_general_protection_fault_in_a_proprietary_module() -> None:
    analysis = analyze_text(GPF)
    verdict = analysis.verdict
    assert verdict.kind is FindingKind.GENERAL_PROTECTION
    assert verdict.culprit == "nvidia"
    assert verdict.confidence is Confidence.HIGH
    assert analysis.facts.suspect_modules == ("nvidia(PO)",)
    assert "P: proprietary module loaded" in analysis.facts.taint_reasons


def test_hard_lockup_looks_past_the_spinlock_to_the_driver() -> None:
    verdict = analyze_text(HARD_LOCKUP).verdict
    assert (verdict.kind, verdict.cpu, verdict.culprit) == (FindingKind.HARD_LOCKUP, 2, "mlx5_core")


def test_oom_kill_names_the_victim() -> None:
    verdict = analyze_text(OOM + NMI_PANIC).verdict
    assert verdict.kind is FindingKind.OOM_KILL
    assert verdict.headline == "out of memory (killed stress:2233)"
    assert verdict.confidence is Confidence.MEDIUM


def test_machine_check_is_hardware() -> None:
    verdict = analyze_text(MCE).verdict
    assert (verdict.kind, verdict.cpu, verdict.culprit) == (FindingKind.MACHINE_CHECK, 5, "hardware")
    assert "mcelog" in verdict.summary


def test_a_warning_alone_does_not_explain_a_hang() -> None:
    analysis = analyze_text(WARNING + NMI_PANIC)
    assert analysis.verdict.kind is FindingKind.HARD_HANG
    assert "Only 1 warning(s) came before it" in analysis.verdict.summary
    (warning,) = [f for f in analysis.findings if f.kind is FindingKind.WARNING]
    assert warning.cpu == 3 and str(warning.task) == "ksoftirqd/3:901"
    assert warning.detail == "net/core/dev.c:5123 in __netif_receive_skb_core"


def test_the_earliest_serious_report_wins_over_what_followed() -> None:
    # an Oops in ext4 kills a task holding a lock; hung tasks follow; then the NMI
    oops = KERNEL_BUG.replace(
        "Kernel panic - not syncing: Fatal exception", "note: postgres[812] exited with irqs disabled"
    )
    verdict = analyze_text(oops + HUNG_TASK + NMI_PANIC).verdict
    assert verdict.kind is FindingKind.KERNEL_BUG
    assert verdict.culprit == "ext4"


def test_hard_hang_of_an_idle_cpu_has_no_culprit() -> None:
    verdict = analyze_text(NMI_PANIC).verdict
    assert verdict.kind is FindingKind.HARD_HANG
    assert verdict.culprit is None
    assert verdict.ip is not None and verdict.ip.symbol == "default_idle"
    assert verdict.confidence is Confidence.LOW


def test_other_panics_give_their_reason() -> None:
    text = (
        '[    2.500000] VFS: Cannot open root device "sda1" or unknown-block(0,0): error -6\n'
        "[    2.500001] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\n"
        "[    2.500002] " + CPU_LINE.format(cpu=0, pid=1, comm="swapper/0") + "\n"
        "[    2.500003] Call Trace:\n[    2.500004]  <TASK>\n[    2.500005]  mount_block_root+0x1d8/0x1f0\n"
        "[    2.500006]  prepare_namespace+0x136/0x165\n[    2.500007]  </TASK>\n"
    )
    verdict = analyze_text(text).verdict
    assert verdict.kind is FindingKind.PANIC
    assert verdict.headline == "panic: VFS: Unable to mount root fs on unknown-block(0,0)"


def test_syslog_and_printk_caller_prefixes_are_read() -> None:
    journal = "\n".join(
        "Nov 30 03:12:01 web42 kernel: " + line.split("] ", 1)[1] if "] " in line else line
        for line in HUNG_TASK.splitlines()
    )
    assert analyze_text(journal).verdict.kind is FindingKind.HUNG_TASK
    caller = HUNG_TASK.replace("] ", "] [ T4021] ", 1)
    assert analyze_text(caller).verdict.kind is FindingKind.HUNG_TASK


def test_a_blocked_task_is_on_no_cpu() -> None:
    summary = analyze_text(HUNG_TASK + NMI_PANIC).verdict.summary
    assert "kworker/u16:3:4021 waits in nfs_start_io_write [nfs]" in summary
    assert "a CPU" not in summary


def test_nmi_watchdog_off_on_the_command_line() -> None:
    line = "[    0.000000] Command line: BOOT_IMAGE=/vmlinuz root=/dev/sda1 nmi_watchdog=0 crashkernel=256M\n"
    analysis = analyze_text(line + NMI_PANIC)
    assert analysis.facts.nmi_watchdog_off
    assert any("NMI watchdog was off" in reason for reason in analysis.verdict.reasons)
    assert not analyze_text(
        line.replace("nmi_watchdog=0", "nmi_watchdog=1") + NMI_PANIC
    ).facts.nmi_watchdog_off


def test_long_uptimes_read_in_days() -> None:
    text = HARD_LOCKUP.replace("[ 300.", "[2525445.")
    assert "at 2525445.0 s (29 d 5 h after boot)" in analyze_text(text).verdict.summary
