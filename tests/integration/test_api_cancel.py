"""The library's runbooks take a cancel event, as the CLI's Ctrl-C: once it is set no NMI
starts, and what happened is reported."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import oob
from tests.conftest import write_inventory


def test_a_set_cancel_sends_no_nmi(fleet_factory: Callable[..., Any], tmp_path: Path) -> None:
    fleet = fleet_factory(["idrac9", "ilo5"])
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    cancel = threading.Event()
    cancel.set()
    outcomes = oob.nmi(["all"], inventory=[inventory], audit_log=tmp_path / "audit.jsonl", cancel=cancel)
    assert sorted(o.host for o in outcomes) == ["idrac9-1", "ilo5-1"]
    assert all(o.status == "refused" and "nothing was sent" in o.error.message for o in outcomes)  # type: ignore[union-attr]
    assert [b.nmi_count for b in fleet.bmcs] == [0, 0]
    assert sum(b.open_sessions for b in fleet.bmcs) == 0
    report = oob.crash(["all"], inventory=[inventory], audit_log=tmp_path / "audit.jsonl", cancel=cancel)
    assert [b.nmi_count for b in fleet.bmcs] == [0, 0]
    assert report.exit_code != 0


def test_cancel_set_from_another_thread_stops_what_has_not_started(
    fleet_factory: Callable[..., Any], tmp_path: Path
) -> None:
    fleet = fleet_factory(["idrac9"], count=4)
    inventory = write_inventory(fleet, tmp_path / "inv.toml", timeout=30)
    for bmc in fleet.bmcs:
        fleet.set_faults(bmc.name, latency_ms=1000)
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()  # while every host is logging in
    outcomes = oob.nmi(["all"], inventory=[inventory], audit_log=tmp_path / "audit.jsonl", cancel=cancel)
    for bmc in fleet.bmcs:
        fleet.set_faults(bmc.name, latency_ms=0)
    assert [b.nmi_count for b in fleet.bmcs] == [0] * 4
    assert all(o.status != "ok" for o in outcomes)
    assert sum(b.open_sessions for b in fleet.bmcs) == 0
