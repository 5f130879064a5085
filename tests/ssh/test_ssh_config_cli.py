"""``oob watch`` as a real process, reaching an ``ssh://`` dump target through a Host alias of
the ssh configuration named by ``$OOB_SSH_CONFIG`` (no --ssh-key, no --known-hosts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mocks.sshd import SshServer
from oob.ssh import CONFIG_ENV
from tests.dump.test_dump_cli import finished_dump, inventory, watch


def test_watch_reads_the_dump_through_the_config_alias(
    tmp_path: Path, sshd: SshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (never run without the file: "dumpsrv" would then be looked up in the DNS)
    crash = tmp_path / "crash"
    crash.mkdir()
    finished_dump(crash, "rhel-ssh", "192.0.2.11")
    config = tmp_path / "ssh_config"
    config.write_text(
        "Host dumpsrv\n"
        f"    HostName {sshd.host}\n"
        f"    Port {sshd.port}\n"
        f"    User {sshd.user}\n"
        f"    IdentityFile {sshd.client_key}\n"
        f"    UserKnownHostsFile {sshd.known_hosts}\n"
    )
    # the inventory names the alias only; user and port come from the configuration
    inv = inventory(tmp_path / "inv.toml", {"web01": ("192.0.2.11", f"ssh://{sshd.user}@dumpsrv{crash}")})
    args = ("web01", "-i", str(inv), "--since", "5m", "--json", "--interval", "0.05")
    before = sshd.accepted_logins()

    monkeypatch.setenv(CONFIG_ENV, str(config))
    result = watch(*args)
    assert result.code == 0, result.stderr
    assert result.last("web01")["event"] == "dump_complete"
    assert sshd.accepted_logins() == before + 1
