"""Real sshd servers on loopback for the OpenSSH-configuration tests: a jump host on 127.0.0.1
and a target behind it on 127.0.0.2, and ssh_config files written by the tests."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mocks.sshd import SshServer
from oob.ssh import CONFIG_ENV
from tests.dump.conftest import run_watch, sshd  # noqa: F401 - the real sshd fixtures of tests/dump
from tests.inventory.conftest import load, load_error, write  # noqa: F401


@dataclass(frozen=True)
class JumpPair:
    #: the jump host (127.0.0.1), logging each channel it forwards (LogLevel DEBUG1)
    jump: SshServer
    #: the target (127.0.0.2), which accepts the jump host's client key
    target: SshServer
    #: known_hosts holding both servers' host keys
    known_hosts: Path

    @property
    def key(self) -> Path:
        """The one private key both servers accept."""
        return self.jump.client_key


@pytest.fixture(scope="session")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JumpPair]:
    workdir = tmp_path_factory.mktemp("jump")
    jump = SshServer.start(workdir / "jump", log_level="DEBUG1")
    try:
        target = SshServer.start(workdir / "target", host="127.0.0.2", authorized_keys=[jump.client_key])
        try:
            known = workdir / "known_hosts"
            known.write_text(jump.known_hosts.read_text() + target.known_hosts.read_text())
            yield JumpPair(jump, target, known)
        finally:
            target.stop()
    finally:
        jump.stop()


@pytest.fixture(autouse=True)
def no_user_ssh_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own ~/.ssh/config never takes part: each test names its file."""
    monkeypatch.setenv(CONFIG_ENV, "none")


@pytest.fixture
def ssh_config(tmp_path: Path) -> Callable[[str], Path]:
    """ssh_config(text) -> the path of an OpenSSH client configuration file holding ``text``."""

    def config(text: str) -> Path:
        path = tmp_path / "ssh_config"
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return config
