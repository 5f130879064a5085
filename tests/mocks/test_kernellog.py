"""The mock's kernel logs of hung hosts: shaped like a real kernel's, consistent, and saved by kdump.

The shapes are checked against what the real logs in ``tests/data/kernel-logs`` show and
the kernel's own format strings (kernel/hung_task.c, sched_show_task, print_tainted);
oob's own panic reader (:func:`oob.dump.panic.panic_lines`) must read each log's panic.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from mocks.crashkernel import KERNELS
from mocks.fleet import Fleet
from mocks.host import HostConfig
from mocks.kdump import DumpSpec, dmesg_text
from mocks.kernellog import HANG_KINDS, HangKind, KernelLog, build_kernel_log, hang_kind, hang_kinds
from mocks.probe import Probe
from oob.analysis import analyze_text
from oob.dump.panic import panic_lines
from tests.mocks.test_mock_cli import serving

pytest_plugins = ["mocks.pytest_plugin"]

Start = Callable[..., Fleet]
Http = Callable[[Fleet], requests.Session]

RELEASES = sorted(set(KERNELS.values()))
STAMP = re.compile(r"^\[\s*(\d+\.\d{6})\] (.*)$")
CPU_LINE = re.compile(
    r"^CPU: (\d+) PID: (\d+) Comm: (\S+) Kdump: loaded (Not tainted|Tainted: (.*?)) (\S+) #1"
)
REAL_LOGS = Path(__file__).resolve().parents[1] / "data" / "kernel-logs"


def logs() -> list[KernelLog]:
    return [
        build_kernel_log(kind, hostname=f"web{n:02d}", release=release, uptime=123_456.5 + n, seed=n)
        for n, (kind, release) in enumerate((k, r) for k in HANG_KINDS for r in RELEASES)
    ]


def messages(log: KernelLog) -> list[tuple[float, str]]:
    found = []
    for line in log.text.splitlines():
        match = STAMP.match(line)
        assert match, f"a line without its printk time stamp: {line!r}"
        found.append((float(match[1]), match[2]))
    return found


def before_panic(log: KernelLog) -> list[str]:
    texts = [text for _, text in messages(log)]
    return texts[: next(i for i, text in enumerate(texts) if text.startswith("Uhhuh. NMI received"))]


@pytest.mark.parametrize("log", logs(), ids=lambda log: f"{log.kind.value}-{log.release}")
def test_every_log_ends_with_the_nmi_panic_and_its_dump(log: KernelLog) -> None:
    texts = [text for _, text in messages(log)]
    start = next(
        i for i, text in enumerate(texts) if text.startswith("Uhhuh. NMI received for unknown reason")
    )
    assert texts[start] == "Uhhuh. NMI received for unknown reason 3d on CPU 0."
    assert texts[start + 1] == "Kernel panic - not syncing: NMI: Not continuing"
    assert CPU_LINE.match(texts[start + 2]) and texts[start + 2].startswith("CPU: 0 ")
    assert texts[start + 3].startswith("Hardware name: ")
    assert texts[start + 4 : start + 7] == ["Call Trace:", " <NMI>", " dump_stack_lvl+0x44/0x5c"]
    tail = texts[start:]
    assert tail.index(" </NMI>") < tail.index(" <TASK>") and texts[-1] == " </TASK>"
    assert any(re.fullmatch(r"RIP: 0010:\S+\+0x[0-9a-f]+/0x[0-9a-f]+( \[\w+\])?", t) for t in tail)
    # kexec comes first: nothing after the dump, and one panic in the whole log
    assert sum("Kernel panic - not syncing" in text for text in texts) == 1
    info = panic_lines(log.text)
    assert (
        info.cause == "unknown_nmi" and info.panic_line == "Kernel panic - not syncing: NMI: Not continuing"
    )
    times = [when for when, _ in messages(log)]
    assert times == sorted(times), "the printk clock never goes back in one log"
    assert times[start] == pytest.approx(log.panic_time, abs=1e-6)


@pytest.mark.parametrize("log", logs(), ids=lambda log: f"{log.kind.value}-{log.release}")
def test_tasks_cpus_and_taint_are_consistent_within_a_log(log: KernelLog) -> None:
    comm_of: dict[int, str] = {}

    def saw(pid: int, comm: str) -> None:
        assert comm_of.setdefault(pid, comm) == comm, f"PID {pid} is {comm_of[pid]} and {comm}"

    width = 18 if log.release.startswith("5.") else 19  # TAINT_N came with 6.0
    taints: list[str] = []
    for _, text in messages(log):
        if match := CPU_LINE.match(text):
            saw(int(match[2]), match[3])
            assert match[6] == log.release
            if match[5] is not None:
                assert len(match[5]) == width and match[5][0] == "G", repr(match[5])
                taints.append(match[5])
        for pattern in (
            r"^INFO: task (\S+):(\d+) blocked for more than \d+ seconds\.$",
            r"soft lockup - CPU#\d+ stuck for \d+s! \[(\S+):(\d+)\]$",
            r"^note: (\S+)\[(\d+)\] exited with preempt_count 1$",
        ):
            if match := re.search(pattern, text):
                saw(int(match[2]), match[1])
        if match := re.match(
            r"^task:(\S+)\s+state:D stack:0\s+pid:(\d+)\s+ppid:\d+\s+flags:0x[0-9a-f]{8}$", text
        ):
            saw(int(match[2]), match[1])
    # taint flags only grow: O and E at module load, D after an Oops, L after a soft lockup
    for earlier, later in itertools.pairwise(taints):
        assert all(flag == " " or flag in later for flag in earlier.replace("G", " ")), (earlier, later)
    expected = log.expected
    assert comm_of.get(expected.pid) == expected.comm
    texts = [text for _, text in messages(log)]
    if expected.cpu is not None:
        header = f"CPU: {expected.cpu} PID: {expected.pid} Comm: {expected.comm} "
        assert any(text.startswith(header) for text in texts)
    assert any(text.endswith(f" [{expected.culprit}]") for text in texts)


@pytest.mark.parametrize("log", logs(), ids=lambda log: f"{log.kind.value}-{log.release}")
def test_no_address_of_a_real_network(log: KernelLog) -> None:
    for candidate in re.findall(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.])", log.text):
        address = ipaddress.ip_address(candidate)
        assert address.is_loopback or address in ipaddress.ip_network("192.0.2.0/24"), candidate
    for name in re.findall(r"\b(?:[a-z0-9-]+\.)+(?:net|com|org|local|lan|corp)\b", log.text):
        assert name.endswith(("example.net", "example.com", "lists.debian.org")), name


@pytest.mark.parametrize("log", logs(), ids=lambda log: f"{log.kind.value}-{log.release}")
def test_oob_reads_the_cause_the_builder_put_in(log: KernelLog) -> None:
    """oob's classifier (oob.analysis) finds each log's kind, CPU, task and culprit."""
    analysis = analyze_text(log.text)
    verdict, expected = analysis.verdict, log.expected
    assert verdict.kind is not None and verdict.kind.value == expected.kind
    assert (verdict.culprit, verdict.cpu, str(verdict.task)) == (
        expected.culprit,
        expected.cpu,
        expected.task,
    )
    assert analysis.facts.release == log.release
    assert analysis.facts.panic_reason == "NMI: Not continuing"
    out_of_tree = {"hard": "exhba", "rcustall": "pktflt"}.get(log.kind.value)
    assert analysis.facts.suspect_modules == ((f"{out_of_tree}(OE)",) if out_of_tree else ())


def test_hard_hang_logs_nothing_before_the_nmi() -> None:
    log = build_kernel_log("hard", hostname="db07", uptime=400_000.0)
    earlier = before_panic(log)
    serious = re.compile(r"BUG|INFO:|rcu:|Oops|WARNING|Call Trace|blocked for|lockup|NMI backtrace")
    assert not [text for text in earlier if serious.search(text)]
    assert any("nmi_watchdog=0" in text for text in earlier if text.startswith("Command line:"))
    assert not any(text.startswith("NMI watchdog: Enabled") for text in earlier)
    assert log.expected.kind == "hard_hang" and log.expected.cpu == 0
    texts = [text for _, text in messages(log)]
    assert f"CPU: 0 PID: {log.expected.pid} Comm: {log.expected.comm} " in "\n".join(texts)
    assert "RIP: 0010:exhba_fw_wait_ready+0x5a/0xb0 [exhba]" in texts
    assert "exhba: loading out-of-tree module taints kernel." in texts


def test_soft_lockup_follows_its_rcu_stall_on_the_same_cpu() -> None:
    log = build_kernel_log("softlockup", hostname="web01")
    texts = before_panic(log)
    cpu, task = log.expected.cpu, log.expected.task
    stall = texts.index("rcu: INFO: rcu_preempt self-detected stall on CPU")
    assert re.match(
        rf"^rcu: \t{cpu}-\.\.\.\.: \(\d+ ticks this GP\) idle=[0-9a-f]{{4}}/1/0x4000000000000000 ",
        texts[stall + 1],
    )
    assert re.match(r"^\t\(t=\d+ jiffies g=\d+ q=\d+ ncpus=\d+\)$", texts[stall + 2])
    lockups = [i for i, t in enumerate(texts) if t.startswith("watchdog: BUG: soft lockup")]
    assert len(lockups) == 2 and stall < lockups[0]
    for i in lockups:
        assert re.fullmatch(
            rf"watchdog: BUG: soft lockup - CPU#{cpu} stuck for 2\ds! \[{re.escape(task)}\]", texts[i]
        )
        assert texts[i + 1].startswith("Modules linked in: ")
        assert texts[i + 2].startswith(f"CPU: {cpu} PID: {log.expected.pid} Comm: {log.expected.comm} ")
        assert texts[i + 4] == "Workqueue: writeback wb_workfn (flush-8:0)"
        assert texts[i + 5] == "RIP: 0010:ext4_mb_good_group+0x41/0x110 [ext4]"
    # one CPU spinning in one place: every dump of it shows the same registers
    dumps = [texts[i + 5 : i + 16] for i in lockups]
    assert dumps[0] == dumps[1]


def test_rcu_stall_names_the_stalled_cpu_and_its_nmi_backtrace() -> None:
    log = build_kernel_log("rcustall", hostname="fw02", release="5.14.0-427.13.1.el9_4.x86_64")
    texts = before_panic(log)
    cpu = log.expected.cpu
    start = texts.index("rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:")
    assert texts[start + 1].startswith(f"rcu: \t{cpu}-...0: (0 ticks this GP) ")
    assert re.fullmatch(r"\t\(detected by 0, t=2100\d jiffies, g=\d+, q=\d+ ncpus=\d+\)", texts[start + 2])
    assert texts[start + 3 : start + 5] == [
        f"Sending NMI from CPU 0 to CPUs {cpu}:",
        f"NMI backtrace for cpu {cpu}",
    ]
    assert texts[start + 5].startswith(
        f"CPU: {cpu} PID: {log.expected.pid} Comm: pktflt_gc Kdump: loaded Tainted: G "
    )
    assert texts[start + 7] == "RIP: 0010:pktflt_table_gc+0x8c/0x1f0 [pktflt]"
    assert "EFLAGS: 00000046" in texts[start + 9], "interrupts off: no timer, no soft lockup report"
    assert not any("soft lockup" in text or "Watchdog detected hard LOCKUP" in text for text in texts)


def test_hung_tasks_are_printed_as_kernel_hung_task_c_prints_them() -> None:
    log = build_kernel_log("hungtask", hostname="app03")
    texts = before_panic(log)
    reports = [i for i, t in enumerate(texts) if t.startswith("INFO: task ")]
    assert len(reports) == 4, "two tasks, at two of khungtaskd's checks"
    first = reports[0]
    assert re.fullmatch(rf"INFO: task {log.expected.task} blocked for more than 12\d seconds\.", texts[first])
    assert texts[first + 1] == "      Not tainted 6.1.0-21-amd64 #1"
    assert texts[first + 2] == '"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.'
    assert re.fullmatch(
        rf"task:rsync {{11}}state:D stack:0     pid:{log.expected.pid}\s*ppid:\d+\s+flags:0x00000002",
        texts[first + 3],
    )
    trace = texts[first + 4 : first + 12]
    assert trace == [
        "Call Trace:",
        " <TASK>",
        " __schedule+0x34d/0x9e0",
        " schedule+0x5a/0xd0",
        " schedule_preempt_disabled+0x14/0x30",
        " __mutex_lock.constprop.0+0x3b4/0x700",
        " nfs_scan_commit+0x2f/0xe0 [nfs]",
        " __nfs_commit_inode+0x8a/0x1b0 [nfs]",
    ]
    worker = reports[1]
    assert texts[worker + 4] == "Workqueue: writeback wb_workfn (flush-0:52)"
    assert texts.index("nfs: server nfs01.example.net not responding, still trying") < first


def test_oops_then_the_host_lives_on_and_hangs() -> None:
    log = build_kernel_log("oops", hostname="nas01")
    texts = before_panic(log)
    oops = texts.index("BUG: kernel NULL pointer dereference, address: 0000000000000008")
    assert texts[oops + 4] == "Oops: 0000 [#1] PREEMPT SMP NOPTI"
    assert texts[oops + 5].startswith(
        f"CPU: {log.expected.cpu} PID: {log.expected.pid} Comm: jbd2/sda2-8 Kdump: loaded Not tainted "
    )
    assert texts[oops + 7] == "RIP: 0010:jbd2_journal_commit_transaction+0x3c8/0x1b70 [jbd2]"
    end = texts.index("---[ end trace 0000000000000000 ]---")
    assert texts[end - 1] == "CR2: 0000000000000008" and texts[end - 2].startswith("Modules linked in: ")
    assert texts[end + 1] == texts[oops + 7], "oops_end() repeats the registers (panic_on_oops=0)"
    lockup = next(i for i, t in enumerate(texts) if "soft lockup" in t)
    assert end < lockup and "Tainted: G      D" in texts[lockup + 2]
    # kernel/hung_task.c reports nothing once the kernel is tainted D
    assert not any(text.startswith("INFO: task ") for text in texts)
    assert "Kernel panic - not syncing" not in "\n".join(texts)


def test_logs_are_the_same_for_a_host_and_differ_between_hosts() -> None:
    one = build_kernel_log("softlockup", hostname="web01", uptime=90_000.0)
    assert build_kernel_log("softlockup", hostname="web01", uptime=90_000.0) == one
    other = build_kernel_log("softlockup", hostname="web02", uptime=90_000.0)
    assert other.text != one.text and other.expected.pid != one.expected.pid
    assert build_kernel_log("softlockup", hostname="web01", uptime=90_000.0, seed=1).text != one.text


def test_time_stamps_follow_the_uptime() -> None:
    late = build_kernel_log("hungtask", hostname="web01", uptime=3_456_789.25)
    assert late.panic_time == 3_456_789.25
    assert "[3456789.250000] Uhhuh. NMI received" in late.text
    # a host that just booted cannot have hung tasks 120 s old: the log starts the hang later
    fresh = build_kernel_log("hungtask", hostname="web01", uptime=30.0)
    assert fresh.panic_time > 265


@pytest.mark.parametrize("name", ["softlock", "", "HARD ", "oops,hard"])
def test_unknown_hang_kinds_are_refused_with_the_known_ones(name: str) -> None:
    if name == "HARD ":
        assert hang_kind(name) is HangKind.HARD
        return
    with pytest.raises(ValueError, match="known: hard, softlockup, hungtask, rcustall, oops"):
        hang_kind(name)
    with pytest.raises(ValueError, match="known: hard"):
        DumpSpec(hang_kind=name)
    with pytest.raises(ValueError, match="known: hard"):
        HostConfig(hang_kind=name)


def test_hang_kind_lists() -> None:
    assert hang_kinds(None) == (None,)
    assert hang_kinds("oops, none,hard") == (HangKind.OOPS, None, HangKind.HARD)
    assert hang_kinds(["rcustall"]) == (HangKind.RCUSTALL,)
    with pytest.raises(ValueError, match="no hang kind"):
        hang_kinds(" , ")


def test_dump_spec_default_log_is_unchanged_and_a_sysrq_crash_shows_no_hang() -> None:
    assert dmesg_text(DumpSpec(hang_kind=None)) == dmesg_text(DumpSpec())
    assert "Do you have a strange power saving mode enabled?" in dmesg_text(DumpSpec())
    sysrq = dmesg_text(DumpSpec(hang_kind="softlockup", panic="sysrq"))
    assert "sysrq: Trigger a crash" in sysrq and "soft lockup" not in sysrq
    hung = dmesg_text(
        DumpSpec(hang_kind="softlockup", hostname="web01", kernel="6.1.0-21-amd64", uptime=7200.5)
    )
    assert (
        hung == build_kernel_log("softlockup", hostname="web01", release="6.1.0-21-amd64", uptime=7200.5).text
    )


def test_the_real_logs_share_the_shapes_the_builder_writes() -> None:
    """The builder's fixed lines, as the real 6.1 kernel printed them (tests/data/kernel-logs)."""
    real = "\n".join(path.read_text() for path in sorted(REAL_LOGS.glob("*/vmcore-dmesg.txt")))
    for line in (
        " dump_stack_lvl+0x44/0x5c",
        " unknown_nmi_error.cold+0x3b/0x49",
        "rcu: INFO: rcu_preempt self-detected stall on CPU",
        " kthread+0xda/0x100",
        " ? kthread_complete_and_exit+0x20/0x20",
        "Oops: 0002 [#1] PREEMPT SMP NOPTI",
        "NMI backtrace for cpu 1",
        "Sending NMI from CPU 0 to CPUs 1:",
        "Kernel panic - not syncing: NMI: Not continuing",
        "CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033",
    ):
        assert line in real, line
    assert re.search(r"Kdump: loaded Tainted: G {11}OE {6}6\.1\.0-50-amd64 #1  Debian 6\.1\.176-1", real)
    assert re.search(r"task:rcu_preempt     state:I stack:0     pid:15    ppid:2      flags:0x00004000", real)


def test_a_hung_host_saves_its_hang_and_a_healthy_one_the_plain_panic(
    mock_fleet_factory: Start, mock_http: Http, tmp_path: Path
) -> None:
    fleet = mock_fleet_factory(
        ["ilo5", "idrac9"],
        dump_root=tmp_path / "crash",
        layouts=["debian", "rhel"],
        hang_kind="rcustall,oops",
        scale=0.02,
    )
    hung, healthy = fleet.host("ilo5-1"), fleet.host("idrac9-1")
    hung.set_state("hung")
    described = fleet.describe()["bmcs"]
    assert isinstance(described, list) and [b["hang_kind"] for b in described] == ["rcustall", "oops"]
    uptime = hung.uptime
    assert 86_400 <= uptime <= 41 * 86_400
    http = mock_http(fleet)
    for bmc in fleet.bmcs:
        probe = Probe(http, bmc)
        assert probe.login().status_code == 201
        assert probe.reset("Nmi").status_code in (200, 204)
        probe.logout()
    for host in (hung, healthy):
        assert host.wait_for("running", 10), host.to_dict()
    assert hung.dump_directory is not None and healthy.dump_directory is not None
    (debian_log,) = hung.dump_directory.glob("dmesg.*")
    text = debian_log.read_text()
    assert "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:" in text
    assert "6.1.0-21-amd64 #1  Debian 6.1.90-1" in text
    panic_at = float(STAMP.match(next(line for line in text.splitlines() if "Uhhuh." in line))[1])  # type: ignore[index]
    assert uptime <= panic_at < uptime + 60, "the log's clock is the host's uptime"
    verdict = analyze_text(text).verdict
    assert verdict.kind is not None and (verdict.kind.value, verdict.culprit) == ("rcu_stall", "pktflt")
    plain = (healthy.dump_directory / "vmcore-dmesg.txt").read_text()
    assert "Oops" not in plain and "Do you have a strange power saving mode enabled?" in plain


def test_hang_kind_through_the_control_api(mock_fleet_factory: Start) -> None:
    fleet = mock_fleet_factory(["ilo5"])
    url = f"{fleet.control_url}/bmcs/ilo5-1/host"
    with requests.Session() as control:
        control.trust_env = False
        answer = control.post(url, json={"hang_kind": "hungtask"}, timeout=5)
        assert answer.status_code == 200 and answer.json()["host"]["hang_kind"] == "hungtask"
        assert answer.json()["host_state"] == "running"
        both = control.post(url, json={"state": "hung", "hang_kind": "hard"}, timeout=5).json()
        assert (both["host_state"], both["host"]["hang_kind"]) == ("hung", "hard")
        bad = control.post(url, json={"hang_kind": "meltdown"}, timeout=5)
        assert bad.status_code == 400 and "known: hard, softlockup" in bad.json()["error"]
        assert control.post(url, json={"hang_kind": 3}, timeout=5).status_code == 400
        cleared = control.post(url, json={"hang_kind": None}, timeout=5).json()
        assert cleared["host"]["hang_kind"] is None and cleared["host_state"] == "hung"
    assert fleet.host("ilo5-1").config.hang_kind is None


def test_mock_serve_hang_kind(tmp_path: Path) -> None:
    with serving(
        "--vendors", "ilo5,idrac9,openbmc", "--hang-kind", "oops,hard", "--workdir", str(tmp_path)
    ) as (
        proc,
        ready,
    ):
        assert [b["hang_kind"] for b in ready["bmcs"]] == ["oops", "hard", "oops"]
        proc.terminate()
        assert proc.wait(20) == 0


def test_the_hang_fleet_fixture_hangs_each_host_a_different_way(mock_hang_fleet: Fleet) -> None:
    hosts = mock_hang_fleet.hosts
    assert [host.config.hang_kind for host in hosts] == list(HANG_KINDS)
    assert {host.state.value for host in hosts} == {"hung"}
    assert all(host.config.dump_target is not None for host in hosts)
