"""docs/API.md names only functions and fields that exist."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import oob
from oob.analysis.model import Analysis, Finding, LogFacts, Verdict
from oob.dump.watcher import DumpResult
from oob.runbook.crash import CrashOutcome

DOC = (Path(__file__).resolve().parents[2] / "docs" / "API.md").read_text()


def test_every_function_in_the_table_exists() -> None:
    names = set(re.findall(r"`oob\.(\w+)\(", DOC))
    assert names >= {"select_hosts", "nmi", "crash", "analyze", "analyze_dumps"}
    for name in names:
        assert callable(getattr(oob, name)), name


def test_the_fields_named_exist() -> None:
    def fields(cls: type) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    assert {
        "host",
        "bmc",
        "status",
        "exit_code",
        "via",
        "nmi_at",
        "dump",
        "host_back",
        "after_dump",
        "recovered",
        "error",
    } <= fields(CrashOutcome)
    assert {
        "state",
        "location",
        "path",
        "vmcore",
        "size",
        "format",
        "panic",
        "analysis",
        "seconds",
    } <= fields(DumpResult)
    assert {"verdict", "findings", "facts", "notes", "handoff"} <= fields(Analysis)
    assert {
        "kind",
        "headline",
        "summary",
        "confidence",
        "culprit",
        "cpu",
        "task",
        "ip",
        "time",
        "reasons",
    } <= fields(Verdict)
    assert {"kind", "title", "time", "cpu", "task", "stack", "backtraces", "detail", "culprit"} <= fields(
        Finding
    )
    assert {
        "release",
        "tainted",
        "taint_reasons",
        "suspect_modules",
        "nmi_watchdog_off",
        "panic_reason",
    } <= fields(LogFacts)
