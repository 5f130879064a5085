"""``python -m mocks serve`` as a real process: the ready line, the control API, signals, errors."""

from __future__ import annotations

import json
import os
import select
import signal
import stat
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from mocks.cli import main
from tests.conftest import CliResult

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def serving(
    *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """Start ``python -m mocks serve ARGS``; yields the process and its ready line."""
    command = [sys.executable, "-m", "mocks", "serve", *args]
    environ = {**os.environ, **(env or {})}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=environ
    ) as proc:
        try:
            assert proc.stdout is not None
            readable, _, _ = select.select([proc.stdout], [], [], 60)
            assert readable, "no ready line within 60 s"
            line = proc.stdout.readline()
            assert line.endswith("\n"), (
                f"not one JSON line: {line!r} / {proc.stderr.read() if proc.stderr else ''}"
            )
            yield proc, json.loads(line)
        finally:
            if proc.poll() is None:
                proc.kill()


def _trusting(ca_file: str) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = ca_file
    return session


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_is_ready_answers_and_stops_cleanly(stop_signal: signal.Signals, tmp_path: Path) -> None:
    inventory = tmp_path / "fleet.toml"
    args = (
        "--vendors",
        "ilo5,ami",
        "--count",
        "2",
        "--write-inventory",
        str(inventory),
        "--workdir",
        str(tmp_path / "work"),
    )
    with serving(*args) as (proc, ready):
        assert ready["event"] == "ready"
        assert [b["name"] for b in ready["bmcs"]] == ["ilo5-1", "ilo5-2", "ami-1", "ami-2"]
        assert ready["inventory"] == str(inventory) and stat.S_IMODE(inventory.stat().st_mode) == 0o600
        assert Path(ready["ca_file"]).is_file() and ready["ca_file"].startswith(str(tmp_path / "work"))
        hosts = tomllib.loads(inventory.read_text())["hosts"]
        assert hosts["ami-2"]["bmc"]["address"] == ready["bmcs"][3]["url"]
        with requests.Session() as control:
            control.trust_env = False
            listing = control.get(ready["control"] + "/bmcs", timeout=5).json()
        assert [b["name"] for b in listing] == ["ilo5-1", "ilo5-2", "ami-1", "ami-2"]
        with _trusting(ready["ca_file"]) as http:
            root = http.get(ready["bmcs"][0]["url"] + "/redfish/v1/", timeout=5).json()
        assert root["Oem"]["Hpe"]["Manager"][0]["ManagerType"] == "iLO 5"
        proc.send_signal(stop_signal)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert out == "", "stdout carries the ready line only"
        assert "stopped" in err


def test_password_env_is_the_bmc_password_and_the_inventory_reference(tmp_path: Path) -> None:
    inventory = tmp_path / "inv.toml"
    args = ("--vendors", "dmtf", "--write-inventory", str(inventory), "--password-env", "MOCK_BMC_PW",
            "--inventory-tls", "fingerprint", "--workdir", str(tmp_path / "w"))  # fmt: skip
    with serving(*args, env={"MOCK_BMC_PW": "from-the-env"}) as (proc, ready):
        data = tomllib.loads(inventory.read_text())
        assert data["defaults"]["bmc"]["password"] == "env:MOCK_BMC_PW"
        assert "ca_file" not in data["defaults"]["bmc"] and data["hosts"]["dmtf-1"]["bmc"]["fingerprint"]
        with _trusting(ready["ca_file"]) as http:
            login = http.post(
                ready["bmcs"][0]["url"] + "/redfish/v1/SessionService/Sessions",
                json={"UserName": "admin", "Password": "from-the-env"},
                timeout=5,
            )
            assert login.status_code == 201
            http.delete(
                ready["bmcs"][0]["url"] + login.headers["Location"],
                headers={"X-Auth-Token": login.headers["X-Auth-Token"]},
                timeout=5,
            )
        proc.terminate()
        assert proc.wait(timeout=20) == 0


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--bind", "192.0.2.7"], "not a loopback address"),
        (["--bind", "0.0.0.0"], "not a loopback address"),
        (["--control", "192.0.2.7:8080"], "not a loopback address"),
        (["--vendors", "ilo5,ilo9"], "unknown vendor flavour(s) ilo9"),
        (["--count", "0"], "--count"),
        (["--password-env", "MOCK_SURELY_UNSET_VAR"], "MOCK_SURELY_UNSET_VAR"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str], says: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MOCK_SURELY_UNSET_VAR"}
    proc = subprocess.run(
        [sys.executable, "-m", "mocks", "serve", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and says in lines[0], proc.stderr


def test_main_returns_codes_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--bind", "192.0.2.7"]) == 2
    assert "not a loopback address" in capsys.readouterr().err
    assert main(["serve", "--no-such-option"]) == 2
    assert main(["serve", "--ipmi", "--ipmi-cipher-mode", "suite17"]) == 2
    assert "invalid choice: 'suite17'" in capsys.readouterr().err
    assert main(["vendors"]) == 0
    assert "supermicro-x12" in capsys.readouterr().out


def test_username_and_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-a-file\n")
    args = (
        "--vendors",
        "xcc",
        "--username",
        "root",
        "--password-file",
        str(secret),
        "--workdir",
        str(tmp_path / "w"),
    )
    with serving(*args) as (proc, ready):
        assert ready["username"] == "root"
        assert (tmp_path / "w" / "bmc-password").read_text() == "from-a-file"
        with _trusting(ready["ca_file"]) as http:
            systems = http.get(
                ready["bmcs"][0]["url"] + "/redfish/v1/Systems", auth=("root", "from-a-file"), timeout=5
            )
        assert systems.status_code == 200
        proc.terminate()
        assert proc.wait(timeout=20) == 0


def _ipmitool_status(port: int, password: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPMI")}
    env["IPMI_PASSWORD"] = password  # -E: never on the command line
    argv = ["ipmitool", "-I", "lanplus", "-H", "127.0.0.1", "-p", str(port), "-U", "admin", "-E"]
    return subprocess.run([*argv, "chassis", "power", "status"], capture_output=True, text=True, env=env,
                          timeout=30, check=False)  # fmt: skip


def test_serve_with_ipmi(tmp_path: Path) -> None:
    inventory = tmp_path / "inv.toml"
    args = ("--vendors", "idrac9,ipmi", "--ipmi", "--ipmi-cipher-mode", "always3",
            "--write-inventory", str(inventory), "--workdir", str(tmp_path / "w"))  # fmt: skip
    with serving(*args) as (proc, ready):
        assert ready["ipmi_cipher_mode"] == "always3"
        ports = {b["name"]: b["ipmi_port"] for b in ready["bmcs"]}
        assert all(ports.values()) and ready["bmcs"][1]["url"] is None
        hosts = tomllib.loads(inventory.read_text())["hosts"]
        assert {name: hosts[name]["bmc"]["ipmi_port"] for name in ports} == ports
        password = (tmp_path / "w" / "bmc-password").read_text()
        for port in ports.values():
            status = _ipmitool_status(port, password)
            assert status.stdout.strip() == "Chassis Power is on", status.stderr
        with requests.Session() as control:
            control.trust_env = False
            idrac = control.get(ready["control"] + "/bmcs/idrac9-1", timeout=5).json()
        assert idrac["ipmi"]["cipher_mode"] == "always3" and idrac["requests_ipmi"] > 0
        proc.terminate()
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0 and "(2 answer IPMI on UDP)" in err
        # stopped: the inventory it wrote (naming the fleet's CA and password file) is gone too
        assert not inventory.exists() and f"removed {inventory}" in err


def test_fifty_ipmi_bmcs_in_one_process(tmp_path: Path, oob: Callable[..., CliResult]) -> None:
    inventory = tmp_path / "inv.toml"
    args = ("--vendors", "ipmi", "--count", "50", "--write-inventory", str(inventory),
            "--workdir", str(tmp_path / "w"))  # fmt: skip
    with serving(*args) as (proc, ready):
        assert len(ready["bmcs"]) == 50 and len({b["ipmi_port"] for b in ready["bmcs"]}) == 50
        # oob's own IPMI client, 50 hosts at once, against the one select loop of the mock
        result = oob("power", "ipmi-*", "status", "-i", str(inventory), "--json", "--parallel", "50")
        assert result.code == 0, result.stderr
        assert sorted(r["host"] for r in result.records) == sorted(b["name"] for b in ready["bmcs"])
        assert {(r["via"], r["power"]) for r in result.records} == {("ipmi", "On")}
        with requests.Session() as control:
            control.trust_env = False
            listing = control.get(ready["control"] + "/bmcs", timeout=5).json()
        assert all(b["requests_ipmi"] >= 1 and b["ipmi"]["open_sessions"] == 0 for b in listing)
        proc.terminate()
        assert proc.wait(timeout=20) == 0
