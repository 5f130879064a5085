"""Logs that are cut short, empty, binary, enormous or crafted: a clear note, never a crash."""

from __future__ import annotations

from pathlib import Path

from oob.analysis import Confidence, FindingKind, analyze_bytes, analyze_text
from oob.analysis.kernellog import MAX_FINDINGS, MAX_LINE_CHARS, MAX_TITLE

LOGS = Path(__file__).resolve().parents[1] / "data" / "kernel-logs"


def real(name: str) -> bytes:
    return (LOGS / name / "vmcore-dmesg.txt").read_bytes()


def test_empty_log() -> None:
    verdict = analyze_bytes(b"").verdict
    assert verdict.kind is None
    assert verdict.confidence is Confidence.NONE
    assert verdict.headline == "no kernel log"


def test_boot_log_without_a_crash() -> None:
    boot = b"".join(real("hard").splitlines(keepends=True)[:370])
    verdict = analyze_bytes(boot).verdict
    assert verdict.headline == "no crash report in the log"
    assert "cut before the crash" in verdict.summary


def test_log_cut_in_the_middle_of_a_report() -> None:
    # the soft lockup log cut inside the first CPU's register dump
    cut = b"".join(real("softlockup").splitlines(keepends=True)[:447])
    analysis = analyze_bytes(cut, cut=True)
    assert analysis.verdict.kind is FindingKind.SOFT_LOCKUP
    assert analysis.verdict.cpu == 0
    assert analysis.facts.panic_reason is None
    assert analysis.notes == (
        "only the last 28 KiB of the log were read",
        "the log ends without a panic or an Oops: it was cut short, or this is not the log of the crash",
    )
    assert analysis.verdict.confidence is Confidence.MEDIUM


def test_cut_mid_line_and_mid_character() -> None:
    data = real("oops")
    cut = data[: data.index(b"RIP: 0010:nmihang_bad_deref") + 20] + "é".encode()[:1]
    verdict = analyze_bytes(cut).verdict
    assert verdict.kind is FindingKind.OOPS
    assert verdict.task is not None and str(verdict.task) == "insmod:127"


def test_binary_file_is_not_a_kernel_log() -> None:
    head = (LOGS / "oops" / "vmcore.head").read_bytes()
    analysis = analyze_bytes(head)
    assert analysis.notes == ("the file is not text (binary bytes): not a kernel log",)
    assert analysis.verdict.confidence is Confidence.NONE


def test_nul_bytes_and_control_characters_do_not_reach_titles() -> None:
    text = "[ 1.0] Kernel panic - not syncing: \x1b]0;pwned\x07 oops\x00\n"
    analysis = analyze_bytes(text.encode())
    assert analysis.facts.panic_reason is not None
    assert "\x00" not in analysis.facts.panic_reason
    # escapes are kept in the data; every renderer passes them through oob.safetext


def test_enormous_log_keeps_its_end() -> None:
    filler = b"[    1.000000] an ordinary line that matches nothing\n" * 400_000
    analysis = analyze_bytes(filler + real("softlockup"))
    assert analysis.verdict.kind is FindingKind.SOFT_LOCKUP
    assert analysis.notes == ("only the last 16384 KiB of the log were read",)


def test_crafted_log_of_reports_alone_is_bounded() -> None:
    header = "[ 1.0] watchdog: BUG: soft lockup - CPU#0 stuck for 8s! [x:1]\n"
    analysis = analyze_text(header * 5000)
    assert len(analysis.findings) == MAX_FINDINGS
    assert analysis.notes[0] == f"{5000 - MAX_FINDINGS} reports in the middle of the log were not kept"


def test_overlong_lines_are_cut() -> None:
    analysis = analyze_text("[ 1.0] Kernel panic - not syncing: " + "A" * 100_000 + "\n")
    assert analysis.facts.panic_reason is not None
    assert len(analysis.facts.panic_reason) == MAX_TITLE
    assert len(analysis.verdict.headline) <= 80


def test_crafted_long_lines_are_cut_and_the_rest_still_read() -> None:
    # shapes that made the patterns backtrack: a timestamp-like token, a symbol-like run,
    # a module-like run, a taint-like run; each line is read only to MAX_LINE_CHARS
    crafted = [
        "T1" * 500_000,
        "2026-11-30T" + "1" * 100_000,
        "RIP: 0010:" + "a" * 100_000,
        "Modules linked in: " + "a" * 100_000,
        "CPU: 0 PID: 1 Comm: x Tainted: G" + " A" * 50_000,
    ]
    analysis = analyze_bytes(("\n".join(crafted) + "\n").encode() + real("softlockup"))
    assert analysis.verdict.kind is FindingKind.SOFT_LOCKUP
    assert analysis.notes == (f"5 lines longer than {MAX_LINE_CHARS} characters were read only that far",)
