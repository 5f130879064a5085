"""The real `oob` CLI: power, bmc info, inventory, sessions, secrets and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import REPO, CliResult, write_inventory


def test_power_status_and_actions(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["idrac9", "openbmc"])
    inventory = str(write_inventory(fleet, tmp_path / "inv.toml"))
    status = oob("power", "@mock", "status", "-i", inventory, "--json")
    assert status.code == 0, status.stderr
    assert {r["host"]: r["power"] for r in status.records} == {"idrac9-1": "On", "openbmc-1": "On"}
    off = oob("power", "openbmc-1", "off", "-i", inventory, "--yes", "--json")
    assert off.code == 0, off.stderr
    assert off.record("openbmc-1")["sent"] == ["ForceOff"]
    assert fleet.bmc("openbmc-1").power == "Off"
    refused = oob("power", "idrac9-1", "reset", "-i", inventory)  # no confirmation typed
    assert refused.code == 7
    on = oob("power", "openbmc-1", "on", "-i", inventory, "--json")  # 'on' needs no confirmation
    assert on.code == 0 and fleet.bmc("openbmc-1").power == "On"
    assert fleet.bmc("idrac9-1").open_sessions == 0 and fleet.bmc("openbmc-1").open_sessions == 0


def test_power_usage_errors_exit_2(oob: Callable[..., CliResult], tmp_path: Path) -> None:
    result = oob("power", "web01", "explode", "-i", str(tmp_path / "x.toml"))
    assert result.code == 2
    assert "usage: oob power TARGET..." in result.stderr


def test_bmc_info_json(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["xcc", "ami"])
    inventory = str(write_inventory(fleet, tmp_path / "inv.toml"))
    result = oob("bmc", "info", "all", "-i", inventory, "--json")
    assert result.code == 0, result.stderr
    xcc, ami = result.record("xcc-1"), result.record("ami-1")
    assert (
        xcc["vendor"] == "Lenovo XCC" and xcc["nmi"]["offered"] is True and xcc["nmi"]["source"] == "inline"
    )
    assert (
        ami["vendor"] == "AMI MegaRAC"
        and ami["nmi"]["offered"] is False
        and ami["nmi"]["source"] == "actioninfo"
    )
    assert xcc["firmware"] and xcc["power"] == "On"
    human = oob("bmc", "info", "all", "-i", inventory)
    assert "Lenovo XCC" in human.stdout and "no (actioninfo)" in human.stdout


def test_sessions_closed_after_failures(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    fleet = fleet_factory(["ilo5", "supermicro"])
    inventory = str(write_inventory(fleet, tmp_path / "inv.toml", timeout=3))
    fleet.set_faults("ilo5-1", auth_failure=True)
    failed = oob("bmc", "info", "ilo5-1", "-i", inventory, "--json")
    assert failed.code == 3 and failed.record("ilo5-1")["error"] == "auth"
    fleet.set_faults("supermicro-1", http_status=503, http_status_count=50)
    broken = oob("power", "supermicro-1", "status", "-i", inventory, "--json")
    assert broken.code == 3
    for name in ("ilo5-1", "supermicro-1"):
        assert fleet.bmc(name).open_sessions == 0


def test_password_never_printed_logged_or_audited(
    fleet_factory: Callable[..., Any], oob: Callable[..., CliResult], tmp_path: Path, audit_path: Path
) -> None:
    fleet = fleet_factory(["ilo5", "idrac9"])
    inventory = str(write_inventory(fleet, tmp_path / "inv.toml"))
    password = fleet.bmc("ilo5-1").password
    assert password
    outputs: list[str] = []
    for args in (
        ("nmi", "ilo5-1", "--yes", "-v"),
        ("nmi", "idrac9-1", "--yes", "--json", "-v"),
        ("power", "all", "status", "-v"),
        ("bmc", "info", "all", "--json", "-v"),
        ("inventory", "list", "--json"),
        ("inventory", "list"),
        ("inventory", "check", "-v"),
    ):
        result = oob(*args, "-i", inventory)
        assert result.code == 0, (args, result.stderr)
        outputs += [result.stdout, result.stderr]
    fleet.set_faults("ilo5-1", auth_failure=True)
    failure = oob("nmi", "ilo5-1", "--yes", "--force", "-v", "-i", inventory)
    assert failure.code == 3
    outputs += [failure.stdout, failure.stderr, audit_path.read_text()]
    assert all(password not in text for text in outputs)


def test_bad_inventory_is_one_line_exit_2(oob: Callable[..., CliResult], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[hosts.web01]\nbmc.address = "192.0.2.1"\nbmc.pasword = "env:X"\n')
    result = oob("nmi", "web01", "-i", str(bad), "--yes")
    assert result.code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "bad.toml" in lines[0] and "web01" in lines[0] and "bmc.password" in lines[0]
    assert "Traceback" not in result.stderr
    missing = oob("nmi", "web01", "--yes")
    assert missing.code == 2 and "OOB_INVENTORY" in missing.stderr


def test_missing_secret_is_exit_2_naming_host(oob: Callable[..., CliResult], tmp_path: Path) -> None:
    inventory = tmp_path / "inv.toml"
    inventory.write_text(
        '[hosts.db01]\nbmc.address = "https://127.0.0.1:9"\nbmc.username = "admin"\n'
        'bmc.password = "env:OOB_TEST_NO_SUCH_VAR"\n'
    )
    result = oob("inventory", "check", "-i", str(inventory))
    assert result.code == 2
    assert "db01" in result.stderr and "OOB_TEST_NO_SUCH_VAR" in result.stderr
    nmi = oob("nmi", "db01", "-i", str(inventory), "--yes", "--json")
    assert nmi.code == 2


def test_mock_serve_cli_and_oob_against_it(oob: Callable[..., CliResult], tmp_path: Path) -> None:
    inventory = tmp_path / "fleet.toml"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "oob",
            "mock",
            "serve",
            "--vendors",
            "ilo5,ami",
            "--write-inventory",
            str(inventory),
            "--workdir",
            str(tmp_path / "work"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["event"] == "ready"
        assert (inventory.stat().st_mode & 0o077) == 0
        password = (tmp_path / "work").glob("*password*")
        secret = next(password).read_text().strip()
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
        assert secret and secret not in cmdline
        result = oob("nmi", "ilo5-1", "-i", str(inventory), "--yes", "--json")
        assert result.code == 0, result.stderr
        import requests

        with requests.Session() as http:
            http.trust_env = False
            bmcs = {b["name"]: b for b in http.get(ready["control"] + "/bmcs", timeout=10).json()}
        assert bmcs["ilo5-1"]["nmi_count"] == 1 and bmcs["ilo5-1"]["open_sessions"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr


def test_demo_runs_end_to_end(oob: Callable[..., CliResult], tmp_path: Path) -> None:
    users_cache = tmp_path / "cache"
    result = oob("demo", "--json", env={"OOB_CACHE_DIR": str(users_cache)})
    assert result.code == 0, result.stderr
    assert not users_cache.exists()  # what the demo learnt of its mock BMCs went with it
    results = [r for r in result.records if r.get("event") == "result"]
    assert {r["host"] for r in results} == {"ilo5-1", "idrac9-1", "openbmc-1", "ipmi-1", "ami-1"}
    assert all(r["status"] == "complete" for r in results)
    assert {r["dump"]["family"] for r in results} == {"rhel", "suse", "debian"}
    assert next(r for r in results if r["host"] == "ami-1")["via"] == "ipmi"
    human = oob("demo")
    assert human.code == 0 and "NMI: Not continuing" in human.stdout


def test_version_and_help(oob: Callable[..., CliResult]) -> None:
    from oob import __version__

    assert oob("--version").stdout.strip() == f"oob {__version__}"
    assert oob("--help").code == 0
    assert os.path.exists(REPO / "README.md")


def test_demo_keep_leaves_the_fleet_running_until_stopped(tmp_path: Path) -> None:
    import requests

    proc = subprocess.Popen(
        [sys.executable, "-m", "oob", "demo", "--keep", "--vendors", "ilo5,ipmi"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=dict(os.environ, OOB_AUDIT_LOG=str(tmp_path / "audit.jsonl")),
    )
    try:
        assert proc.stderr is not None
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if line.startswith("control API:"):
                break
        control = line.split()[2]
        with requests.Session() as http:
            http.trust_env = False
            bmcs = http.get(control, timeout=10).json()
        assert {b["name"] for b in bmcs} == {"ilo5-1", "ipmi-1"}
        assert all(b["nmi_count"] == 1 for b in bmcs)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "complete" in out
    # nothing left behind: the folder held the fleet's CA and password file
    work = next(w for line in lines for w in line.split() if "oob-demo-" in w)
    assert not Path(work.rstrip(")")).exists(), work
