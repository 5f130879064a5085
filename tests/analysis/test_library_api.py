"""``oob.analyze`` and ``oob.analyze_dumps``: the analysis for runbook engines."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import oob
from oob.analysis import FindingKind
from oob.errors import DumpTargetError, UsageError

LOGS = Path(__file__).resolve().parents[1] / "data" / "kernel-logs"


def test_text_bytes_and_paths() -> None:
    path = LOGS / "softlockup" / "vmcore-dmesg.txt"
    by_text = oob.analyze(path.read_text())
    by_bytes = oob.analyze(path.read_bytes())
    by_path = oob.analyze(path)
    assert by_text.verdict == by_bytes.verdict
    assert by_path.verdict.kind is FindingKind.SOFT_LOCKUP
    assert by_path.source == str(path)


def test_a_dump_directory_and_its_details(tmp_path: Path) -> None:
    directory = tmp_path / "127.0.0.1-2026-11-30-03:12:09"
    directory.mkdir()
    shutil.copy(LOGS / "sysrq" / "vmcore-dmesg.txt", directory)
    shutil.copy(LOGS / "sysrq" / "vmcore.head", directory / "vmcore")
    (result,) = oob.analyze_dumps([str(directory)])
    assert result.exit_code == 0
    assert result.format is not None and result.format.kernel == "6.1.0-50-amd64"
    assert result.analysis is not None and result.analysis.verdict.kind is FindingKind.SYSRQ_CRASH


def test_errors_raise_the_oob_error() -> None:
    with pytest.raises(UsageError, match="no such file or directory"):
        oob.analyze("no-such-dump")


def test_no_log_raises(tmp_path: Path) -> None:
    directory = tmp_path / "127.0.0.1-2026-11-30-03:12:09"
    directory.mkdir()
    (directory / "vmcore").write_bytes((LOGS / "hard" / "vmcore.head").read_bytes())
    with pytest.raises(DumpTargetError, match="kdump saved no kernel log"):
        oob.analyze(directory, extract=False)
