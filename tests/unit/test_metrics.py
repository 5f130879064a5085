"""oob.metrics: drill outcomes, and a textfile that cannot be written."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from oob import metrics
from oob.errors import UsageError
from oob.runbook.crash import CrashOutcome, CrashStatus
from oob.runbook.drill import DrillOutcome, DrillReport


def test_drill_metrics_say_which_host_passed(tmp_path: Path) -> None:
    report = DrillReport(
        [
            DrillOutcome(
                CrashOutcome("web01", "192.0.2.1", CrashStatus.COMPLETE, 0, host_back=True), "sysrq"
            ),
            DrillOutcome(CrashOutcome("web02", "192.0.2.2", CrashStatus.TIMEOUT, 5), "sysrq"),
        ]
    )
    path = tmp_path / "drill.prom"
    metrics.write(path, metrics.crash_registry(report, now=1_800_000_000))
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(path.read_text())
        for s in family.samples
    }
    assert found[("oob_drill_passed", (("host", "web01"),))] == 1
    assert found[("oob_drill_passed", (("host", "web02"),))] == 0
    assert found[("oob_drill_outcome", (("host", "web02"), ("oob_drill_outcome", "timeout")))] == 1
    assert found[("oob_drill_run_timestamp_seconds", ())] == 1_800_000_000


def test_unwritable_file_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "oob.prom").mkdir()  # a directory where the file should go: rename fails
    with pytest.raises(UsageError, match=r"oob\.prom: cannot write the metrics"):
        metrics.write(folder / "oob.prom", metrics.crash_registry(DrillReport([])))
    assert sorted(p.name for p in folder.iterdir()) == ["oob.prom"]
