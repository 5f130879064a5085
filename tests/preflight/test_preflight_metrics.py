"""``--prometheus-textfile``: metrics node_exporter's parser (prometheus_client's) reads back."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import CliResult
from tests.preflight.test_preflight_hosts import ready_fleet, ssh_args  # noqa: F401 - a fixture


def samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_preflight_writes_readiness_per_host_and_check(
    ready_fleet: Any,  # noqa: F811
    oob: Callable[..., CliResult],
    tmp_path: Path,
) -> None:
    fleet, inventory = ready_fleet
    prom = tmp_path / "oob.prom"
    prom.write_text("# the previous run's file: replaced whole\n")
    result = oob(
        "preflight", "all", "-i", str(inventory), "--prometheus-textfile", str(prom), *ssh_args(fleet)
    )
    assert result.code == 0, result.stderr
    found = samples(prom)
    for bmc in fleet.bmcs:
        host = (("host", bmc.name),)
        assert found[("oob_preflight_ready", host)] == 1
        ok = (("check", "crash_loaded"), ("host", bmc.name), ("oob_preflight_check", "ok"))
        fail = (("check", "crash_loaded"), ("host", bmc.name), ("oob_preflight_check", "fail"))
        assert found[("oob_preflight_check", ok)] == 1
        assert found[("oob_preflight_check", fail)] == 0
        assert found[("oob_preflight_crashkernel_bytes", host)] > 0
    assert ("oob_preflight_run_timestamp_seconds", ()) in found
    # written by rename: no temporary file left beside it
    assert sorted(os.listdir(tmp_path)) == ["oob.prom"]


def test_last_dump_time_and_age(
    ready_fleet: Any,  # noqa: F811
    oob: Callable[..., CliResult],
    tmp_path: Path,
) -> None:
    fleet, inventory = ready_fleet
    host = fleet.host("ilo5-1")
    dump = Path(host.config.dump_target) / "127.0.0.1-2026-11-30-03:12:09"
    dump.mkdir(exist_ok=True)
    os.utime(dump, (1_700_000_000, 1_700_000_000))
    prom = tmp_path / "oob.prom"
    result = oob(
        "preflight", "ilo5-1", "-i", str(inventory), "--prometheus-textfile", str(prom), *ssh_args(fleet)
    )
    assert result.code == 0, result.stderr
    found = samples(prom)
    assert found[("oob_preflight_last_dump_timestamp_seconds", (("host", "ilo5-1"),))] == 1_700_000_000
    assert found[("oob_preflight_last_dump_age_seconds", (("host", "ilo5-1"),))] > 0


def test_a_file_node_exporter_would_not_read_is_refused_first(
    ready_fleet: Any,  # noqa: F811
    oob: Callable[..., CliResult],
    tmp_path: Path,
) -> None:
    _, inventory = ready_fleet
    result = oob("preflight", "all", "-i", str(inventory), "--prometheus-textfile", str(tmp_path / "oob.txt"))
    assert result.code == 2
    assert (
        result.stderr.strip()
        == f"oob: error: {tmp_path / 'oob.txt'}: node_exporter's textfile collector reads only *.prom files"
    )
