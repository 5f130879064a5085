"""Shared fixtures: a mock BMC fleet on loopback and a way to run the real `oob` CLI."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def discovery_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test (and every oob it starts) has a Redfish discovery cache of its own: what one
    test's BMCs taught oob never steers another's requests."""
    directory = tmp_path_factory.mktemp("oob-cache")
    monkeypatch.setenv("OOB_CACHE_DIR", str(directory))
    return directory


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def record(self, host: str) -> dict[str, Any]:
        matches = [r for r in self.records if r.get("host") == host]
        assert len(matches) == 1, f"expected one record for {host}: {self.stdout!r} / {self.stderr!r}"
        return matches[0]


@pytest.fixture
def audit_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.jsonl"


@pytest.fixture
def oob(audit_path: Path) -> Callable[..., CliResult]:
    """Run `python -m oob ARGS` as a real process (stdin closed unless input is given)."""

    def run(
        *args: str, tty_input: str | None = None, env: dict[str, str] | None = None, timeout: float = 90
    ) -> CliResult:
        """stdin is empty, or with ``tty_input`` a real pseudo-terminal the answer is typed into."""
        environ = dict(os.environ)
        environ["OOB_AUDIT_LOG"] = str(audit_path)
        environ.pop("OOB_INVENTORY", None)
        environ.update(env or {})
        argv = [sys.executable, "-m", "oob", *args]
        if tty_input is None:
            proc = subprocess.run(
                argv, input="", capture_output=True, text=True, env=environ, timeout=timeout, cwd=REPO
            )
            return CliResult(proc.returncode, proc.stdout, proc.stderr)
        master, slave = pty.openpty()
        try:
            popen = subprocess.Popen(
                argv,
                stdin=slave,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=environ,
                cwd=REPO,
            )
            os.write(master, tty_input.encode())
            stdout, stderr = popen.communicate(timeout=timeout)
        finally:
            os.close(slave)
            os.close(master)
        return CliResult(popen.returncode, stdout, stderr)

    return run


@pytest.fixture
def fleet_factory(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Start mock fleets; every one is stopped at the end of the test."""
    from mocks.fleet import Fleet

    started: list[Any] = []

    def start(vendors: list[str], count: int = 1, **options: Any) -> Any:
        workdir = tmp_path / f"fleet{len(started)}"
        workdir.mkdir()
        fleet = Fleet.start(
            vendors=vendors, count=count, bind="127.0.0.1", workdir=workdir, control="127.0.0.1:0", **options
        )
        started.append(fleet)
        return fleet

    yield start
    for fleet in started:
        fleet.stop()


def write_inventory(fleet: Any, path: Path, *, timeout: float | None = None, tls: str = "ca") -> Path:
    """The fleet's own inventory, with a shorter request timeout for fault tests."""
    fleet.write_inventory(path, tls=tls)
    if timeout is not None:
        text = path.read_text()
        text, count = re.subn(r"(?m)^bmc\.timeout\s*=.*$", f"bmc.timeout = {timeout}", text)
        if count == 0:
            text = text.replace("[defaults]\n", f"[defaults]\nbmc.timeout = {timeout}\n", 1)
        path.write_text(text)
        path.chmod(0o600)
    return path
