"""Every real crash log in tests/data/kernel-logs classified as its README says."""

from __future__ import annotations

from pathlib import Path

import pytest

from oob.analysis import Confidence, FindingKind, analyze_bytes

LOGS = Path(__file__).resolve().parents[1] / "data" / "kernel-logs"


def analyse(name: str):  # type: ignore[no-untyped-def]
    return analyze_bytes((LOGS / name / "vmcore-dmesg.txt").read_bytes(), source=name)


@pytest.mark.parametrize(
    ("name", "kind", "cpu", "task", "ip", "confidence"),
    [
        ("hard", FindingKind.HARD_HANG, 0, "insmod:126", "nmihang_spin", Confidence.LOW),
        (
            "softlockup",
            FindingKind.SOFT_LOCKUP,
            0,
            "nmihang_spin/0:129",
            "nmihang_spin_preempt_off",
            Confidence.HIGH,
        ),
        ("rcustall", FindingKind.RCU_STALL, 1, "nmihang_rcu/1:128", "nmihang_spin_irqs_off", Confidence.HIGH),
        ("oops", FindingKind.OOPS, 0, "insmod:127", "nmihang_bad_deref.constprop.0", Confidence.HIGH),
        ("sysrq", FindingKind.SYSRQ_CRASH, 0, "init:1", None, Confidence.HIGH),
    ],
)
def test_verdict_of_each_real_log(name, kind, cpu, task, ip, confidence) -> None:  # type: ignore[no-untyped-def]
    verdict = analyse(name).verdict
    assert verdict.kind is kind
    assert verdict.cpu == cpu
    assert str(verdict.task) == task
    assert (verdict.ip.symbol if verdict.ip else None) == ip
    assert verdict.confidence is confidence
    assert verdict.culprit == ("sysrq" if name == "sysrq" else "nmihang")


def test_every_real_log_names_the_kernel_release() -> None:
    for name in ("hard", "softlockup", "rcustall", "oops", "sysrq"):
        assert analyse(name).facts.release == "6.1.0-50-amd64"


def test_hard_hang_says_nothing_was_logged_and_what_that_means() -> None:
    analysis = analyse("hard")
    verdict = analysis.verdict
    assert verdict.headline.startswith("hard hang (nothing logged)")
    assert "Nothing was logged before the NMI" in verdict.summary
    assert "interrupts off" in verdict.summary
    assert any("NMI watchdog was off" in reason for reason in verdict.reasons)
    # the only reports are the NMI and its panic
    assert [f.kind for f in analysis.findings] == [FindingKind.NMI, FindingKind.PANIC]


def test_oops_is_found_without_a_panic_line() -> None:
    analysis = analyse("oops")
    assert analysis.facts.panic_reason is None
    assert not any(f.kind is FindingKind.PANIC for f in analysis.findings)
    (oops,) = analysis.findings
    assert oops.kind is FindingKind.OOPS
    assert oops.detail == "NULL pointer dereference at 0000000000000000"
    assert oops.time == pytest.approx(7.940232)
    assert [str(f) for f in oops.stack.trace[:2]] == ["nmihang_init [nmihang]", "do_one_initcall"]  # type: ignore[union-attr]
    assert any("panic_on_oops" in note for note in analysis.notes)


def test_soft_lockup_names_both_cpus_and_the_earlier_rcu_stall() -> None:
    analysis = analyse("softlockup")
    lockups = [f for f in analysis.findings if f.kind is FindingKind.SOFT_LOCKUP]
    assert [(f.cpu, str(f.task), f.detail) for f in lockups] == [
        (0, "nmihang_spin/0:129", "stuck for 8 s"),
        (1, "nmihang_spin/1:130", "stuck for 8 s"),
    ]
    # CPU 1's report interleaves with CPU 0's register dump: each still gets its own RIP
    assert all(f.ip and f.ip.module == "nmihang" for f in lockups)
    summary = analysis.verdict.summary
    assert "An RCU stall was reported first at 10.2 s" in summary
    assert "Also on CPU 1" in summary
    assert analysis.verdict.time == pytest.approx(15.142651)
    assert analysis.facts.tainted == "G OEL"
    assert "L: soft lockup happened" in analysis.facts.taint_reasons


def test_rcu_stall_names_the_stalled_cpu_and_the_one_it_waits_for() -> None:
    analysis = analyse("rcustall")
    stall = next(f for f in analysis.findings if f.kind is FindingKind.RCU_STALL)
    assert stall.cpus == (0,)
    assert stall.task is not None and str(stall.task) == "insmod:126"
    assert [b.cpu for b in stall.backtraces] == [1]  # printed twice, kept once
    assert "CPU 0 (insmod:126) waits in smp_call_function_many_cond for CPU 1" in analysis.verdict.summary


def test_sysrq_crash_is_on_purpose() -> None:
    verdict = analyse("sysrq").verdict
    assert verdict.headline == "SysRq crash (on purpose)"
    assert "by init:1" in verdict.summary


def test_out_of_tree_module_and_taint_reported() -> None:
    facts = analyse("oops").facts
    assert facts.suspect_modules == ("nmihang(OE)",)
    assert facts.tainted == "G OE"
    assert facts.taint_reasons == ("O: out-of-tree module loaded", "E: unsigned module loaded")


def test_analysis_serialises_to_plain_json() -> None:
    import json

    data = json.loads(json.dumps(analyse("rcustall").to_dict()))
    assert data["verdict"]["kind"] == "rcu_stall"
    assert data["verdict"]["task"] == "nmihang_rcu/1:128"
    assert data["kernel"]["release"] == "6.1.0-50-amd64"
    assert data["findings"][0]["backtraces"][0]["ip"]["module"] == "nmihang"
