"""Jump hosts (ProxyJump), from the inventory's ssh.jump and from ~/.ssh/config: a real sshd
reached through a second real sshd, with the jump host's own sockets as the proof."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mocks.sshd import opened_by
from oob import asyncbridge
from oob.errors import DumpTargetError, HostKeyError, HostSshError
from oob.model import Host, SshConfig
from oob.preflight.hostssh import HostShell
from oob.ssh import DUMP_SERVER, SshAddress, SshOptions, close_connection, connect, parse_jump

from .conftest import JumpPair


def _forwarded_lines(pair: JumpPair) -> int:
    """The jump sshd's own record of the channels it opened to the target."""
    target = f"target {pair.target.host} port {pair.target.port}"
    return sum(
        1 for line in pair.jump.log().splitlines() if "server_request_direct_tcpip" in line and target in line
    )


async def _through(address: SshAddress, options: SshOptions, pair: JumpPair) -> tuple[str, int, int]:
    """Connect, run a command on the target, and count who holds the TCP connection to it."""
    conn = await connect(address, options)
    try:
        ran = await conn.run("echo $SSH_CONNECTION", check=False)
        return (
            str(ran.stdout),
            pair.jump.forwarded_to(pair.target.host, pair.target.port),
            opened_by(os.getpid(), pair.target.host, pair.target.port),
        )
    finally:
        await close_connection(conn)


def test_inventory_jump_reaches_the_target_through_the_jump_host(pair: JumpPair) -> None:
    options = SshOptions(known_hosts=str(pair.known_hosts), identity_files=(str(pair.key),))
    address = SshAddress(None, pair.target.host, pair.target.port, jump=f"127.0.0.1:{pair.jump.port}")
    forwarded_before = _forwarded_lines(pair)
    logins_before = pair.jump.accepted_logins(), pair.target.accepted_logins()

    stdout, by_jump, by_us = asyncio.run(_through(address, options, pair))

    # the target saw a connection to 127.0.0.2 ...
    assert stdout.split()[2:] == [pair.target.host, str(pair.target.port)]
    # ... held by the jump host's sshd, not by this process
    assert (by_jump, by_us) == (1, 0)
    assert _forwarded_lines(pair) == forwarded_before + 1
    assert (pair.jump.accepted_logins(), pair.target.accepted_logins()) == (
        logins_before[0] + 1,
        logins_before[1] + 1,
    )


def test_a_direct_connection_is_not_forwarded(pair: JumpPair) -> None:
    # the control for the proof above: without a jump, this process holds the connection
    options = SshOptions(known_hosts=str(pair.known_hosts), identity_files=(str(pair.key),))
    forwarded_before = _forwarded_lines(pair)
    _, by_jump, by_us = asyncio.run(
        _through(SshAddress(None, pair.target.host, pair.target.port), options, pair)
    )
    assert (by_jump, by_us) == (0, 1)
    assert _forwarded_lines(pair) == forwarded_before


def test_proxyjump_and_host_aliases_from_the_ssh_config(
    pair: JumpPair, ssh_config: Callable[[str], Path]
) -> None:
    config = ssh_config(
        f"""
        Host kdump-target
            HostName {pair.target.host}
            Port {pair.target.port}
            ProxyJump bastion
        Host bastion
            HostName 127.0.0.1
            Port {pair.jump.port}
        Host *
            IdentityFile {pair.key}
            UserKnownHostsFile {pair.known_hosts}
        """
    )
    forwarded_before = _forwarded_lines(pair)
    # nothing but the alias: user, port, key, known_hosts and the jump all come from the file
    stdout, by_jump, by_us = asyncio.run(
        _through(SshAddress(None, "kdump-target"), SshOptions(config=(str(config),)), pair)
    )
    assert stdout.split()[2:] == [pair.target.host, str(pair.target.port)]
    assert (by_jump, by_us) == (1, 0)
    assert _forwarded_lines(pair) == forwarded_before + 1


def test_inventory_jump_none_overrides_the_config_proxyjump(
    pair: JumpPair, ssh_config: Callable[[str], Path]
) -> None:
    config = ssh_config(
        f"""
        Host {pair.target.host}
            ProxyJump 127.0.0.1:{pair.jump.port}
        """
    )
    options = SshOptions(
        known_hosts=str(pair.known_hosts), identity_files=(str(pair.key),), config=(str(config),)
    )
    _, by_jump, by_us = asyncio.run(
        _through(SshAddress(None, pair.target.host, pair.target.port, jump="none"), options, pair)
    )
    assert (by_jump, by_us) == (0, 1)
    _, by_jump, by_us = asyncio.run(
        _through(SshAddress(None, pair.target.host, pair.target.port), options, pair)
    )
    assert (by_jump, by_us) == (1, 0)


def test_the_jump_hosts_key_is_checked_too(pair: JumpPair, tmp_path: Path) -> None:
    only_target = tmp_path / "known_hosts"
    only_target.write_text(pair.target.known_hosts.read_text())
    options = SshOptions(known_hosts=str(only_target), identity_files=(str(pair.key),))
    address = SshAddress(None, pair.target.host, pair.target.port, jump=f"127.0.0.1:{pair.jump.port}")
    target_connections = pair.target.log().count("Connection from")
    with pytest.raises(HostKeyError) as caught:
        asyncio.run(connect(address, options, DUMP_SERVER))
    assert f"ssh jump host 127.0.0.1:{pair.jump.port}: host key unknown" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert pair.target.log().count("Connection from") == target_connections  # never reached


def test_a_jump_host_that_refuses_the_key_is_named(pair: JumpPair, tmp_path: Path) -> None:
    from mocks.sshd import generate_keypair

    stranger = tmp_path / "id_stranger"
    generate_keypair(stranger, "stranger")
    options = SshOptions(known_hosts=str(pair.known_hosts), identity_files=(str(stranger),))
    address = SshAddress("nobody", pair.target.host, pair.target.port, jump=f"127.0.0.1:{pair.jump.port}")
    with pytest.raises(
        DumpTargetError, match=r"^ssh jump host \w+@127\.0\.0\.1:\d+: login refused \(publickey\)"
    ):
        asyncio.run(connect(address, options))


def test_preflight_logs_in_through_the_inventory_jump(pair: JumpPair) -> None:
    # what oob preflight and oob drill use: the host's ssh.* keys from the inventory
    host = Host(
        name="web01",
        address=pair.target.host,
        ssh=SshConfig(
            port=pair.target.port,
            jump=f"{pair.jump.user}@127.0.0.1:{pair.jump.port}",
            key=str(pair.key),
            known_hosts=str(pair.known_hosts),
        ),
    )

    async def run() -> tuple[str, int]:
        async with HostShell(host, SshOptions()) as shell:
            ran = await shell.run("echo $SSH_CONNECTION")
            return ran.stdout, pair.jump.forwarded_to(pair.target.host, pair.target.port)

    stdout, by_jump = asyncbridge.run(run(), timeout=30)
    assert stdout.split()[2:] == [pair.target.host, str(pair.target.port)]
    assert by_jump == 1


def test_a_flag_wins_over_the_inventory_key(pair: JumpPair, tmp_path: Path) -> None:
    from mocks.sshd import generate_keypair

    stranger = tmp_path / "id_stranger"
    generate_keypair(stranger, "stranger")
    host = Host(
        name="web01",
        address=pair.target.host,
        ssh=SshConfig(port=pair.target.port, key=str(pair.key), known_hosts=str(pair.known_hosts)),
    )

    async def run(options: SshOptions) -> None:
        async with HostShell(host, options):
            pass

    asyncbridge.run(run(SshOptions()), timeout=30)
    with pytest.raises(HostSshError, match=r"login refused \(publickey\)"):
        asyncbridge.run(run(SshOptions(identity_files=(str(stranger),))), timeout=30)


@pytest.mark.parametrize(
    ("text", "hops"),
    [
        ("bastion", [(None, "bastion", None)]),
        ("ops@bastion:2222", [("ops", "bastion", 2222)]),
        ("a@one,two:23", [("a", "one", None), (None, "two", 23)]),
        ("[fd00::1]:2222", [(None, "fd00::1", 2222)]),
        ("none", []),
    ],
)
def test_jump_syntax(text: str, hops: list[tuple[Any, ...]]) -> None:
    assert [(h.user, h.server, h.port) for h in parse_jump(text)] == hops


@pytest.mark.parametrize("bad", ["", "a@", "host:0", "host:99999", "a b", "x," * 9 + "x"])
def test_bad_jump_syntax_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_jump(bad)


def test_inventory_keys(load: Callable[..., Any], tmp_path: Path) -> None:
    inv = load(
        "a.toml",
        """
        [defaults]
        ssh.jump = "ops@bastion.example.com:2222"
        ssh.known_hosts = "keys/known_hosts"
        [hosts.web01]
        bmc.address = "192.0.2.1"
        ssh.key = "~/.ssh/id_oob"
        """,
    )
    ssh = inv.hosts["web01"].ssh
    assert ssh == SshConfig(
        jump="ops@bastion.example.com:2222",
        key=os.path.expanduser("~/.ssh/id_oob"),
        known_hosts=str(tmp_path / "keys" / "known_hosts"),  # relative to the inventory file
    )


def test_ansible_names(load: Callable[..., Any]) -> None:
    inv = load(
        "hosts.yaml",
        """
        all:
          hosts:
            web01:
              bmc_address: 192.0.2.1
              oob_ssh_jump: bastion
              oob_ssh_key: /keys/id_oob
              oob_ssh_known_hosts: /keys/known_hosts
        """,
    )
    assert inv.hosts["web01"].ssh == SshConfig(
        jump="bastion", key="/keys/id_oob", known_hosts="/keys/known_hosts"
    )


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('ssh.jump = "ops@"', "key 'ssh.jump': expected [user@]host[:port]"),
        ('ssh.jump = "b:70000"', "the port is not a number from 1 to 65535"),
        ('ssh.jump = "r@t@b"', "key 'ssh.jump': expected"),
        ('ssh.key = ""', "key 'ssh.key': expected a path to a private key file, got an empty string"),
        ("ssh.known_hosts = 3", "key 'ssh.known_hosts': expected a path to a known_hosts file, got"),
    ],
)
def test_bad_inventory_keys_are_one_line(load_error: Callable[..., Any], line: str, problem: str) -> None:
    _, message = load_error("a.toml", f'[hosts.web01]\nbmc.address = "192.0.2.1"\n{line}\n')
    assert problem in message, message
    assert re.search(r"web01", message)
