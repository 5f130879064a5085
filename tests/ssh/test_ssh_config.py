"""The user's OpenSSH client configuration, honoured: a Host alias with its HostName, a
non-default Port, User, IdentityFile and UserKnownHostsFile, against a real sshd on loopback,
for the host's own SSH (preflight, drill) and for ssh:// dump targets (watch)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from mocks.kdump import KdumpWriter
from mocks.sshd import SshServer, generate_keypair
from oob import asyncbridge
from oob.dump.targets import Targets, parse_target
from oob.dump.watcher import DumpState
from oob.errors import DumpTargetError, HostKeyError, HostSshError
from oob.model import Host, SshConfig
from oob.preflight.hostssh import HostShell
from oob.ssh import CONFIG_ENV, SshAddress, SshOptions, close_connection, connect
from tests.dump.conftest import fast_spec, make_host

ALIAS = "web01-mgmt"


def _alias(sshd: SshServer, known_hosts: Path, *extra: str) -> str:
    """``Host ALIAS`` -> the test sshd (HostName, a non-default Port), key and known_hosts."""
    lines = [
        f"Host {ALIAS} dumpsrv",
        f"    HostName {sshd.host}",
        f"    Port {sshd.port}",
        f"    IdentityFile {sshd.client_key}",
        f"    UserKnownHostsFile {known_hosts}",
        *(f"    {line}" for line in extra),
    ]
    return "\n".join(lines) + "\n"


async def _login(host: Host, options: SshOptions) -> str:
    async with HostShell(host, options) as shell:
        ran = await shell.run("echo $SSH_CONNECTION; id -un")
        return f"{ran.stdout}{shell.login}\n"


def test_preflight_logs_in_to_a_host_alias(
    sshd: SshServer, ssh_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sshd.port != 22
    monkeypatch.setenv(CONFIG_ENV, str(ssh_config(_alias(sshd, sshd.known_hosts))))
    before = sshd.accepted_logins()
    # the inventory names the alias only: no ssh.user, ssh.port, --ssh-key or --known-hosts
    stdout = asyncbridge.run(_login(Host(name="web01", address=ALIAS), SshOptions()), timeout=30)
    connection, user, login = stdout.splitlines()
    assert connection.split()[2:] == [sshd.host, str(sshd.port)]
    assert user == sshd.user
    assert login == f"{sshd.user}@{sshd.host}:{sshd.port}"  # what preflight should show
    assert sshd.accepted_logins() == before + 1


def test_the_config_user_is_used_and_the_inventory_user_wins(
    sshd: SshServer, ssh_config: Callable[[str], Path]
) -> None:
    config = ssh_config(_alias(sshd, sshd.known_hosts, "User kdump-reader"))
    options = SshOptions(config=(str(config),))
    # sshd lets only the test user in: the config's User is who was tried
    with pytest.raises(
        HostSshError, match=rf"ssh kdump-reader@{ALIAS} \(127\.0\.0\.1:{sshd.port}\): login refused"
    ):
        asyncbridge.run(_login(Host(name="web01", address=ALIAS), options), timeout=30)
    inventory_user = Host(name="web01", address=ALIAS, ssh=SshConfig(user=sshd.user))
    assert asyncbridge.run(_login(inventory_user, options), timeout=30).splitlines()[1] == sshd.user


def test_the_inventory_port_wins_over_the_config(sshd: SshServer, ssh_config: Callable[[str], Path]) -> None:
    config = ssh_config(_alias(sshd, sshd.known_hosts))
    host = Host(name="web01", address=ALIAS, ssh=SshConfig(port=1))
    with pytest.raises(HostSshError, match=rf"ssh {ALIAS} \(127\.0\.0\.1:1\): cannot connect"):
        asyncbridge.run(_login(host, SshOptions(config=(str(config),))), timeout=30)


def test_watch_follows_a_dump_on_an_aliased_dump_server(
    tmp_path: Path, sshd: SshServer, ssh_config: Callable[[str], Path], run_watch
) -> None:
    config = ssh_config(_alias(sshd, sshd.known_hosts))
    root = tmp_path / "crash"
    root.mkdir()
    # ssh://user@ALIAS/path: no port in the URL, so the config's Port is the one used
    target = f"ssh://{sshd.user}@dumpsrv{root}"
    assert parse_target(target).port is None
    before = sshd.accepted_logins()
    run = run_watch(
        [make_host("web01", target, address="192.0.2.11")],
        [KdumpWriter(root, fast_spec("rhel-ssh", identity="192.0.2.11"))],
        ssh=SshOptions(config=(str(config),)),
    )
    assert run.result("web01").state is DumpState.COMPLETE
    assert sshd.accepted_logins() == before + 1


def test_checking_host_keys_cannot_be_configured_away(
    tmp_path: Path, sshd: SshServer, ssh_config: Callable[[str], Path]
) -> None:
    config = ssh_config(
        f"""
        Host {ALIAS}
            HostName {sshd.host}
            Port {sshd.port}
            IdentityFile {sshd.client_key}
            StrictHostKeyChecking no
            UserKnownHostsFile none
        """
    )
    with pytest.raises(HostKeyError, match="host key unknown"):
        asyncio.run(connect(SshAddress(sshd.user, ALIAS), SshOptions(config=(str(config),))))


def test_known_hosts_flag_wins_over_the_config(
    tmp_path: Path, sshd: SshServer, ssh_config: Callable[[str], Path]
) -> None:
    config = ssh_config(_alias(sshd, sshd.known_hosts))
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(HostKeyError, match=f"not in {empty}"):
        asyncio.run(
            connect(SshAddress(None, ALIAS), SshOptions(known_hosts=str(empty), config=(str(config),)))
        )


def test_key_flag_wins_over_the_config_identity_file(
    tmp_path: Path, sshd: SshServer, ssh_config: Callable[[str], Path]
) -> None:
    config = ssh_config(_alias(sshd, sshd.known_hosts))
    stranger = tmp_path / "id_stranger"
    generate_keypair(stranger, "stranger")
    options = SshOptions(identity_files=(str(stranger),), config=(str(config),))
    with pytest.raises(DumpTargetError, match=r"login refused \(publickey\).*never uses passwords"):
        asyncio.run(connect(SshAddress(None, ALIAS), options))


def test_accept_new_records_the_real_name_in_the_configs_known_hosts(
    tmp_path: Path, sshd: SshServer, ssh_config: Callable[[str], Path]
) -> None:
    known = tmp_path / "ssh" / "known_hosts"
    config = ssh_config(_alias(sshd, known))

    async def login(options: SshOptions) -> None:
        await close_connection(await connect(SshAddress(None, ALIAS), options))

    with pytest.raises(HostKeyError, match="host key unknown"):
        asyncio.run(login(SshOptions(config=(str(config),))))
    asyncio.run(login(SshOptions(config=(str(config),), accept_new_host_key=True)))
    # OpenSSH's way: the HostName and Port the alias stands for, not the alias
    assert known.read_text() == f"[{sshd.host}]:{sshd.port} {sshd.host_key}\n"
    asyncio.run(login(SshOptions(config=(str(config),))))  # now known: no flag needed


def test_a_missing_config_file_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "nope"))
    with pytest.raises(DumpTargetError) as caught:
        asyncio.run(connect(SshAddress(None, ALIAS), SshOptions()))
    assert str(caught.value) == f"ssh {ALIAS}: cannot read the ssh configuration {tmp_path / 'nope'}"


def test_a_bad_config_file_is_one_clear_line(ssh_config: Callable[[str], Path]) -> None:
    config = ssh_config("Host x\n    Port notanumber\n")

    async def run() -> None:
        targets = Targets(SshOptions(config=(str(config),)))
        try:
            await targets.get("ssh://root@x/var/crash").listdir()
        finally:
            await targets.close()

    with pytest.raises(DumpTargetError) as caught:
        asyncio.run(run())
    assert "bad ssh configuration" in str(caught.value) and "\n" not in str(caught.value)


def test_endpoint_says_where_ssh_would_connect(ssh_config: Callable[[str], Path]) -> None:
    from oob.ssh import SshEndpoint, endpoint

    config = ssh_config(
        """
        Host web*
            HostName 127.0.0.9
            Port 2200
            ProxyJump ops@bastion:2222
        """
    )
    options = SshOptions(config=(str(config),))
    assert endpoint("web01", options=options) == SshEndpoint("127.0.0.9", 2200, "ops@bastion:2222")
    assert endpoint("web01", 22, options) == SshEndpoint("127.0.0.9", 22, "ops@bastion:2222")
    assert endpoint("db01", options=options) == SshEndpoint("db01", 22, None)
    assert endpoint("web01", options=SshOptions(config=())) == SshEndpoint("web01", 22, None)


def test_the_ssh_config_option(tmp_path: Path) -> None:
    from oob.cli.dumpopts import ssh_options
    from oob.errors import UsageError

    config = tmp_path / "ssh_config"
    config.write_text("Host x\n")
    options = ssh_options(None, False, None, config)
    assert options.config_paths() == (str(config),)
    assert ssh_options(None, False, None).config is None  # $OOB_SSH_CONFIG, else ~/.ssh/config
    with pytest.raises(UsageError, match="--ssh-config: .* is not a readable file"):
        ssh_options(None, False, None, tmp_path / "nope")
