"""``oob nmi --yes --workers N``: the hosts shared among worker processes, each NMI still
sent exactly once, one run in the audit log, and stops and lost workers told as the audit
log shows them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from oob.audit import AuditLog
from oob.model import BmcConfig, Host
from oob.runbook.common import Status
from oob.runbook.workers import _lost
from tests.conftest import REPO, CliResult, write_inventory


def _results(stdout: str) -> dict[str, dict[str, Any]]:
    lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return {line["host"]: line for line in lines if "action" in line}


def test_workers_send_each_nmi_once_in_one_run(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path, audit_path: Path
) -> None:
    fleet = fleet_factory(["idrac9", "ilo5", "openbmc"], count=2)
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    result = oob("nmi", "all", "-i", str(inventory), "--yes", "--json", "--workers", "2")
    assert result.code == 0, result.stderr
    results = _results(result.stdout)
    assert sorted(results) == sorted(b.name for b in fleet.bmcs)
    assert {r["status"] for r in results.values()} == {"ok"}
    assert [b.nmi_count for b in fleet.bmcs] == [1] * 6
    assert sum(b.open_sessions for b in fleet.bmcs) == 0
    records = [json.loads(line) for line in audit_path.read_text().splitlines()]
    assert len({r["run"] for r in records}) == 1
    assert sorted(r["host"] for r in records if r["event"] == "nmi.sent") == sorted(results)
    # a second run: the parent's repeat guard refuses every host, no worker sends anything
    again = oob("nmi", "all", "-i", str(inventory), "--yes", "--json", "--workers", "2")
    assert again.code == 7 and [b.nmi_count for b in fleet.bmcs] == [1] * 6


def test_workers_need_yes(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["idrac9"], count=2)
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    result = oob("nmi", "all", "-i", str(inventory), "--json", "--workers", "2")
    assert result.code == 2 and "--workers needs --yes" in result.stderr
    assert "Traceback" not in result.stderr and fleet.bmcs[0].nmi_count == 0


def test_ctrl_c_stops_every_worker_before_its_nmi(
    fleet_factory: Callable[..., Any], tmp_path: Path, audit_path: Path
) -> None:
    fleet = fleet_factory(["idrac9"], count=4)
    inventory = write_inventory(fleet, tmp_path / "inv.toml", timeout=30)
    for bmc in fleet.bmcs:
        fleet.set_faults(bmc.name, latency_ms=2000)
    env = dict(os.environ, OOB_AUDIT_LOG=str(audit_path))
    argv = [
        sys.executable,
        "-m",
        "oob",
        "nmi",
        "all",
        "-i",
        str(inventory),
        "--yes",
        "--json",
        "--workers",
        "2",
    ]
    # a process group of its own, signalled whole as a terminal's Ctrl-C is: the workers
    # ignore it and the parent tells them
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while sum(b.requests_redfish for b in fleet.bmcs) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)  # every worker is logging in (2 s a request)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    results = _results(out)
    assert sorted(results) == sorted(b.name for b in fleet.bmcs)
    assert all(r["status"] != "ok" for r in results.values()), results
    for bmc in fleet.bmcs:
        fleet.set_faults(bmc.name, latency_ms=0)
    assert [b.nmi_count for b in fleet.bmcs] == [0] * 4
    assert sum(b.open_sessions for b in fleet.bmcs) == 0


def test_a_lost_worker_leaves_its_hosts_to_the_audit_log(tmp_path: Path) -> None:
    """A worker that ended without reporting: sending with no answer recorded is outcome
    unknown, nothing recorded is not sent, a recorded answer stands; another run's records
    say nothing of this one."""
    audit = AuditLog(tmp_path / "audit.jsonl")
    other = AuditLog(tmp_path / "audit.jsonl")
    audit.record("nmi.sending", "sending", via="redfish")
    audit.record("nmi.sending", "sent", via="redfish")
    audit.record("nmi.sent", "sent", via="redfish")
    audit.record("nmi.sending", "failed", via="ipmi")
    audit.record("nmi.failed", "failed", via="ipmi", message="refused by the BMC")
    other.record("nmi.sending", "elsewhere", via="redfish")

    def host(name: str) -> Host:
        return Host(
            name=name, address="127.0.0.1", bmc=BmcConfig(kind="redfish", address="https://127.0.0.1")
        )

    lost = {
        name: _lost(host(name), audit, -9) for name in ("sending", "sent", "failed", "elsewhere", "never")
    }
    assert lost["sending"].status == Status.UNKNOWN and lost["sending"].exit_code == 6
    assert "signal 9" in lost["sending"].error.message  # type: ignore[union-attr]
    assert lost["sent"].status == Status.OK
    assert lost["failed"].status == Status.FAILED and "refused by the BMC" in lost["failed"].error.message  # type: ignore[union-attr]
    for name in ("elsewhere", "never"):
        assert lost[name].status == Status.FAILED and "nothing was sent" in lost[name].error.message  # type: ignore[union-attr]


def test_errors_and_audit_handles_cross_to_a_worker_whole(tmp_path: Path) -> None:
    import pickle

    from oob.errors import BmcHttpError, OutcomeUnknown

    http = pickle.loads(
        pickle.dumps(BmcHttpError("GET failed", bmc_message="busy", status=503).for_host("h1"))
    )
    assert (type(http), http.message, http.bmc_message, http.status, http.host) == (
        BmcHttpError,
        "GET failed",
        "busy",
        503,
        "h1",
    )
    unknown = pickle.loads(pickle.dumps(OutcomeUnknown("may have left")))
    assert (unknown.exit_code, unknown.kind, str(unknown)) == (6, "outcome_unknown", "may have left")
    audit = AuditLog(tmp_path / "audit.jsonl", ["oob", "nmi", "all"])
    copy = pickle.loads(pickle.dumps(audit))
    copy.record("nmi.sending", "h1")
    [record] = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert (record["run"], record["command"]) == (audit.run_id, "oob nmi all")


def test_v_shows_each_workers_request_counts(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["idrac9"], count=3)
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    result = oob("nmi", "all", "-i", str(inventory), "--yes", "--workers", "2", "-v")
    assert result.code == 0, result.stdout + result.stderr
    for name in ("idrac9-1", "idrac9-2", "idrac9-3"):
        assert f"{name}: 5 requests to" in result.stderr


def test_a_runbook_script_without_a_main_guard_runs_once(
    fleet_factory: Callable[..., Any], tmp_path: Path, audit_path: Path
) -> None:
    """``oob.nmi(..., workers=2)`` from a script with no ``if __name__ == "__main__"``: the
    workers never import the script again (multiprocessing's spawn would have)."""
    fleet = fleet_factory(["idrac9"], count=4)
    inventory = write_inventory(fleet, tmp_path / "inv.toml")
    script = tmp_path / "runbook.py"
    script.write_text(
        "import oob\n"
        f"outcomes = oob.nmi(['all'], inventory=[{str(inventory)!r}], audit_log={str(audit_path)!r}, workers=2)\n"
        "print(sorted((o.host, o.status) for o in outcomes))\n"
    )
    run = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("[(") == 1  # the script ran once
    assert [b.nmi_count for b in fleet.bmcs] == [1] * 4
