"""One NMI per host whatever races it: two operators, a run racing a confirmed one, a full
disk at each audit write, a signal while the NMI request is in flight.

Every case drives the real CLI against the mock BMC fleet and counts the NMIs the BMC
applied (``nmi_count``): never more than one per host.
"""

from __future__ import annotations

import json
import os
import pty
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, CliResult, write_inventory


def _nmi_process(
    inventory: Path,
    audit: Path,
    host: str,
    *extra: str,
    stdin: Any = subprocess.DEVNULL,
    preexec: Callable[[], None] | None = None,
) -> subprocess.Popen[str]:
    env = dict(os.environ, OOB_AUDIT_LOG=str(audit))
    return subprocess.Popen(
        [sys.executable, "-m", "oob", "nmi", host, "-i", str(inventory), "--json", *extra],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
        preexec_fn=preexec,
    )


def _records(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def _result(stdout: str, host: str) -> dict[str, Any]:
    results = [r for r in _records(stdout) if r.get("host") == host and "exit_code" in r and "event" not in r]
    assert len(results) == 1, stdout
    return results[0]


def _audit(path: Path) -> list[dict[str, Any]]:
    # every line must be a whole record, whatever happened
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_two_concurrent_runs_send_one_nmi(
    fleet_factory: Callable[..., Any], tmp_path: Path, audit_path: Path
) -> None:
    fleet = fleet_factory(["openbmc", "idrac9"], count=2)
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    for bmc in fleet.bmcs:
        runs = [_nmi_process(inventory, audit_path, bmc.name, "--yes") for _ in range(2)]
        outputs = [run.communicate(timeout=60) for run in runs]
        codes = sorted(run.returncode for run in runs)
        assert codes == [0, 7], outputs
        refused = next(out for run, out in zip(runs, outputs, strict=True) if run.returncode == 7)
        message = _result(refused[0], bmc.name)["message"]
        assert "locked" in message or "already sent" in message, message
        assert bmc.nmi_count == 1
        assert bmc.open_sessions == 0
    sent = [r for r in _audit(audit_path) if r["event"] == "nmi.sending"]
    assert sorted(r["host"] for r in sent) == sorted(b.name for b in fleet.bmcs)


def test_a_run_racing_a_confirmed_one_is_refused(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path, audit_path: Path
) -> None:
    fleet = fleet_factory(["openbmc"])
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    master, slave = pty.openpty()
    try:
        # the first operator is at the question (the lock and the audit check already done)
        first = _nmi_process(inventory, audit_path, "openbmc-1", stdin=slave)
        deadline = time.monotonic() + 30
        lock = audit_path.parent / "locks" / "openbmc-1.lock"
        while not (lock.exists() and lock.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        # the second runs with --yes meanwhile: refused by the lock, nothing sent
        second = oob("nmi", "openbmc-1", "-i", str(inventory), "--yes", "--json")
        assert second.code == 7 and "locked by another oob run" in second.record("openbmc-1")["message"]
        assert f"pid {first.pid}" in second.record("openbmc-1")["message"]
        assert fleet.bmc("openbmc-1").nmi_count == 0
        os.write(master, b"openbmc-1\n")
        _, err = first.communicate(timeout=60)
    finally:
        os.close(slave)
        os.close(master)
    assert first.returncode == 0, err
    assert fleet.bmc("openbmc-1").nmi_count == 1
    # and once the first is done, the audit log refuses the second
    third = oob("nmi", "openbmc-1", "-i", str(inventory), "--yes", "--json")
    assert third.code == 7 and "already sent" in third.record("openbmc-1")["message"]
    assert fleet.bmc("openbmc-1").nmi_count == 1


def _file_size_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:
        # a write past the limit comes up short, then fails with EFBIG: a full disk at that byte
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_at_each_audit_write_never_gives_two_nmis(
    fleet_factory: Callable[..., Any], tmp_path: Path
) -> None:
    # one host per case; the cut falls before, inside and after each of the three records
    # (nmi.confirmed, nmi.sending, nmi.sent) of a run
    cuts = [0, 60, 200, 330, 460, 600, 760, 900, 1100, 4000]
    fleet = fleet_factory(["openbmc"], count=len(cuts))
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    seen_codes = set()
    for cut, bmc in zip(cuts, fleet.bmcs, strict=True):
        audit = tmp_path / f"audit-{cut}" / "audit.jsonl"
        audit.parent.mkdir(mode=0o700)
        audit.write_text(json.dumps({"ts": "2026-01-01T00:00:00+00:00", "event": "old"}) + "\n")
        before = audit.stat().st_size
        # the lock files are written first and are tiny: the limit bites on the audit log
        limited = _nmi_process(
            inventory, audit, bmc.name, "--yes", preexec=_file_size_limit(before + cut + 200)
        )
        out, err = limited.communicate(timeout=60)
        assert "Traceback" not in err
        records = _audit(audit)  # parseable: no torn line left behind
        result = _result(out, bmc.name)
        seen_codes.add(limited.returncode)
        if bmc.nmi_count == 0:
            assert result["status"] != "ok" and limited.returncode == 2, (cut, result)
            assert "nothing was sent" in result["message"] or "not written" in result["message"]
        else:
            # sent: reported as sent, whatever happened to the record after it
            assert result["status"] == "ok" and limited.returncode == 0, (cut, result)
            assert any(r["event"] == "nmi.sending" for r in records)
            if not any(r["event"] == "nmi.sent" for r in records):
                assert any("audit record 'nmi.sent' is missing" in w for w in result["warnings"])
        # the rerun (room again) never sends a second one
        again = _nmi_process(inventory, audit, bmc.name, "--yes")
        again_out, again_err = again.communicate(timeout=60)
        assert bmc.nmi_count == 1, (cut, again_out, again_err)
        assert again.returncode == (7 if result["status"] == "ok" else 0)
        _audit(audit)
        assert bmc.open_sessions == 0
    assert seen_codes == {0, 2}  # the cuts did land both before and after the NMI


def test_sigterm_while_the_nmi_is_in_flight_reports_it_unknown(
    fleet_factory: Callable[..., Any], tmp_path: Path, audit_path: Path
) -> None:
    fleet = fleet_factory(["idrac9"])
    # a long request deadline: the signal, not the deadline, must end the wait
    inventory = write_inventory(fleet, tmp_path / "inv.toml", timeout=60)
    # the BMC applies the NMI and never answers
    fleet.set_faults("idrac9-1", read_timeout_after_apply=True)
    proc = _nmi_process(inventory, audit_path, "idrac9-1", "--yes")
    assert proc.stderr is not None
    progress = ""
    while "sending NMI" not in progress:  # --json: events are human lines on stderr
        line = proc.stderr.readline()
        assert line, progress
        progress += line
    time.sleep(0.3)  # the POST is on the wire
    proc.send_signal(signal.SIGTERM)
    out, rest = proc.communicate(timeout=30)
    err = progress + rest
    assert proc.returncode == 6, err
    result = _result(out, "idrac9-1")
    assert result["status"] == "unknown" and "may have been applied" in result["message"]
    assert "interrupted while waiting" in result["message"]
    assert "Traceback" not in err
    assert fleet.bmc("idrac9-1").nmi_count == 1
    assert fleet.bmc("idrac9-1").open_sessions == 0
    events = [r["event"] for r in _audit(audit_path)]
    assert events[-3:] == ["nmi.sending", "nmi.failed", "run.interrupted"], (events, err)


def test_ctrl_c_at_the_question_sends_nothing_and_exits_130(
    fleet_factory: Callable[..., Any], tmp_path: Path, audit_path: Path
) -> None:
    fleet = fleet_factory(["openbmc"])
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    master, slave = pty.openpty()
    try:
        proc = _nmi_process(inventory, audit_path, "openbmc-1", stdin=slave)
        assert proc.stderr is not None
        deadline = time.monotonic() + 30
        prompt = ""
        while "to confirm" not in prompt and time.monotonic() < deadline:
            prompt += proc.stderr.read(1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 130, err
    result = _result(out, "openbmc-1")
    assert result["status"] == "refused" and "nothing was sent" in result["message"]
    assert fleet.bmc("openbmc-1").nmi_count == 0
    assert fleet.bmc("openbmc-1").open_sessions == 0


@pytest.mark.parametrize(
    ("nth", "step"),
    [(1, "the login"), (2, "the Systems GET"), (3, "the system GET")],
)
def test_a_signal_before_the_nmi_sends_nothing_and_leaves_no_session(
    fleet_factory: Callable[..., Any], tmp_path: Path, audit_path: Path, nth: int, step: str
) -> None:
    # every answer takes 2 s; the signal comes half a second after the nth request arrived
    # (not at a fixed time after the start: a loaded machine may still be importing then)
    fleet = fleet_factory(["idrac9"])
    inventory = write_inventory(fleet, tmp_path / "inv.toml", timeout=30)
    fleet.set_faults("idrac9-1", latency_ms=2000)
    proc = _nmi_process(inventory, audit_path, "idrac9-1", "--yes")
    deadline = time.monotonic() + 60
    while fleet.bmc("idrac9-1").requests_redfish < nth and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (step, err)
    result = _result(out, "idrac9-1")
    assert result["status"] != "ok" and "interrupted" in result["message"], (step, result)
    assert "Traceback" not in err
    fleet.set_faults("idrac9-1", latency_ms=0)
    bmc = fleet.bmc("idrac9-1")
    assert bmc.nmi_count == 0, step
    assert bmc.open_sessions == 0, step
    assert [r["event"] for r in _audit(audit_path)][-1] == "run.interrupted"
