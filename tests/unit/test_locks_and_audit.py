"""Per-host locks and the audit log, on real files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from oob.audit import AuditLog
from oob.errors import SafetyRefusal
from oob.locks import host_lock


def test_lock_names_its_holder_when_refusing(tmp_path: Path) -> None:
    with host_lock(tmp_path, "web01"):
        with pytest.raises(SafetyRefusal) as refused:
            with host_lock(tmp_path, "web01"):
                pass
    message = refused.value.message
    assert f"(pid {os.getpid()})" in message and "since 20" in message and "@" in message


def test_stale_holder_record_is_taken_over_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "web01.lock").write_text(json.dumps({"pid": 999999999, "user": "alice", "machine": "box",
                                                     "since": "2026-01-01T00:00:00+00:00"}))
    warnings: list[tuple[str, str]] = []
    with host_lock(tmp_path, "web01", on_stale=lambda host, who: warnings.append((host, who))):
        pass
    assert warnings == [("web01", "alice@box (pid 999999999) since 2026-01-01T00:00:00+00:00")]
    assert (tmp_path / "web01.lock").read_text() == ""  # released cleanly


def test_audit_appends_and_never_rewrites(tmp_path: Path) -> None:
    path = tmp_path / "state" / "audit.jsonl"
    first = AuditLog(path, command=["oob", "nmi", "web01", "--yes"])
    first.record("nmi.sending", "web01", bmc="https://192.0.2.1", via="redfish")
    second = AuditLog(path)
    second.record("nmi.sent", "web01", status=204)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["event"] for r in records] == ["nmi.sending", "nmi.sent"]
    assert records[0]["command"] == "oob nmi web01 --yes"
    assert "@" in records[0]["operator"]
    assert records[0]["run"] != records[1]["run"]
    assert (path.stat().st_mode & 0o077) == 0
    assert second.recent(("nmi.sending", "nmi.sent"), 60, host="web01")["event"] == "nmi.sent"
    assert second.recent(("nmi.sent",), 60, host="web02") is None
    # keyed on the BMC too: another inventory's name for the same machine
    assert second.recent(("nmi.sending",), 60, host="other", bmc="https://192.0.2.1")["host"] == "web01"
