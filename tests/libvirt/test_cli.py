"""The real ``oob`` CLI against guests of libvirt's test driver: nmi, power, bmc info,
preflight's BMC side, and the errors as one line with their exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import REPO, CliResult


def audit_events(path: Path) -> list[str]:
    return [json.loads(line)["event"] for line in path.read_text().splitlines()]


def test_nmi_once_then_the_repeat_guard(
    oob: Callable[..., CliResult], inventory: Callable[..., Path], audit_path: Path
) -> None:
    inv = inventory(("vm1", "vm1"))
    first = oob("nmi", "vm1", "-i", str(inv), "-y", "--json")
    assert first.code == 0, first.stderr
    record = first.record("vm1")
    assert record["via"] == "libvirt" and record["answer"] == "virDomainInjectNMI returned"
    second = oob("nmi", "vm1", "-i", str(inv), "-y", "--json")
    assert second.code == 7
    assert "already sent" in second.record("vm1")["message"]
    assert audit_events(audit_path).count("nmi.sent") == 1


def test_power_status_and_bmc_info(oob: Callable[..., CliResult], inventory: Callable[..., Path]) -> None:
    inv = inventory(("vm1", "vm1"))
    status = oob("power", "vm1", "status", "-i", str(inv), "--json")
    assert status.code == 0 and status.record("vm1")["power"] == "On"
    info = oob("bmc", "info", "vm1", "-i", str(inv), "--json")
    assert info.code == 0, info.stderr
    assert info.record("vm1")["vendor"] == "libvirt TEST"
    off = oob("power", "vm1", "off", "-i", str(inv), "-y", "--json")
    assert off.code == 0 and off.record("vm1")["sent"] == ["Destroy"]


def test_errors_are_one_line_each(
    oob: Callable[..., CliResult], inventory: Callable[..., Path], tmp_path: Path
) -> None:
    inv = inventory(
        ("ghost", "nosuch"),
        ("dead", "vm1", f"qemu+unix:///session?socket={tmp_path}/absent.sock"),
    )
    for host, words in (("ghost", "no guest with name 'nosuch'"), ("dead", "cannot connect to libvirt")):
        result = oob("nmi", host, "-i", str(inv), "-y")
        assert result.code == 3, result.stderr
        assert words in result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert "libvirt:" not in result.stderr  # libvirt's own stderr printing is off


def test_preflight_bmc_side(oob: Callable[..., CliResult], inventory: Callable[..., Path]) -> None:
    inv = inventory(("vm1", "vm1"))
    result = oob("preflight", "vm1", "-i", str(inv), "--json")
    checks = {c["check"]: c for c in result.record("vm1")["checks"]}
    assert checks["nmi"]["status"] == "ok" and "via libvirt" in checks["nmi"]["reason"]
    assert checks["tls"]["status"] == "skip"


def test_missing_binding_is_one_line(
    oob: Callable[..., CliResult], inventory: Callable[..., Path], tmp_path: Path
) -> None:
    hidden = tmp_path / "hide"
    hidden.mkdir()
    (hidden / "libvirt.py").write_text("raise ImportError('hidden by the test')\n")
    path = os.pathsep.join([str(hidden), str(REPO)])
    result = oob("nmi", "vm1", "-i", str(inventory(("vm1", "vm1"))), "-y", env={"PYTHONPATH": path})
    assert result.code == 2
    assert "install python3-libvirt" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_help_does_not_import_the_binding() -> None:
    code = "import sys, oob.cli.app; print('libvirt' in sys.modules)"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, check=True
    )
    assert out.stdout.strip() == "False"
