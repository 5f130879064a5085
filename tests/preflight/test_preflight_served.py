"""`oob mock serve --host-ssh` as a process, and `oob preflight` against the inventory it writes."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import CliResult

REPO = Path(__file__).resolve().parents[2]


def test_preflight_against_a_served_fleet_with_host_ssh(
    tmp_path: Path, oob: Callable[..., CliResult]
) -> None:
    inventory = tmp_path / "inventory.toml"
    command = [
        sys.executable,
        "-m",
        "oob",
        "mock",
        "serve",
        "--vendors",
        "ilo5,openbmc",
        "--host-ssh",
        "--dump-root",
        str(tmp_path / "crash"),
        "--layouts",
        "rhel,debian",
        "--scale",
        "0.02",
        "--write-inventory",
        str(inventory),
        "--workdir",
        str(tmp_path / "work"),
    ]
    environ = {k: v for k, v in os.environ.items() if k != "OOB_INVENTORY"}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=environ
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            readable, _, _ = select.select([proc.stdout], [], [], 60)
            assert readable, "no ready line within 60 s"
            ready = json.loads(proc.stdout.readline())
            ssh = ready["host_ssh"]
            assert (
                ssh["port"] > 0 and Path(ssh["client_key"]).is_file() and Path(ssh["known_hosts"]).is_file()
            )
            assert f"ssh.port = {ssh['port']}" in inventory.read_text()
            result = oob(
                "preflight",
                "all",
                "-i",
                str(inventory),
                "--json",
                "--ssh-key",
                ssh["client_key"],
                "--known-hosts",
                ssh["known_hosts"],
            )
            assert result.code == 0, result.stdout + result.stderr
            records = [r for r in result.records if r.get("event") == "readiness"]
            assert {(r["host"], r["distro"], r["ready"]) for r in records} == {
                ("ilo5-1", "rhel", True),
                ("openbmc-1", "debian", True),
            }
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
