"""Inventory keys for the host's own SSH login: ssh.user and ssh.port."""

from __future__ import annotations

import pytest

from oob.model import SshConfig


def test_ssh_keys_default_and_layer(load) -> None:
    inv = load(
        "a.toml",
        """
        [defaults]
        ssh.user = "oob"
        [groups.db]
        ssh.port = 2222
        [hosts.web01]
        bmc.address = "192.0.2.1"
        [hosts.db01]
        groups = ["db"]
        bmc.address = "192.0.2.2"
        [hosts.db01.ssh]
        user = "kdump-check"
        """,
    )
    assert inv.hosts["web01"].ssh == SshConfig(user="oob", port=None)
    assert inv.hosts["db01"].ssh == SshConfig(user="kdump-check", port=2222)
    assert inv.hosts["db01"].to_dict()["ssh"] == {
        "user": "kdump-check",
        "port": 2222,
        "jump": None,
        "key": None,
        "known_hosts": None,
    }


def test_model_default_leaves_it_to_the_ssh_config(load) -> None:
    # not set: ~/.ssh/config decides, then OpenSSH (oob.ssh), never a default of oob's own
    inv = load("a.toml", '[hosts.web01]\nbmc.address = "192.0.2.1"\n')
    assert inv.hosts["web01"].ssh == SshConfig(None, None)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("ssh.port = 0", "key 'ssh.port': expected a port number from 1 to 65535, got 0"),
        ('ssh.port = "22"', "key 'ssh.port': expected a port number from 1 to 65535, got a string"),
        ('ssh.user = "root@web01"', "key 'ssh.user': expected a user name"),
        ('ssh.user = ""', "key 'ssh.user': expected a user name, got an empty string"),
        ('ssh.usr = "x"', "key 'ssh.usr': unknown key (did you mean 'ssh.user'?)"),
        ('ssh = "root"', "key 'ssh': expected a table of ssh.* settings, got a string"),
    ],
)
def test_bad_ssh_values_name_file_line_host_and_key(load_error, line: str, problem: str) -> None:
    path, message = load_error("a.toml", f'[hosts.web01]\nbmc.address = "192.0.2.1"\n{line}\n')
    assert message.startswith(f"{path}:3: host 'web01': ")
    assert problem in message


def test_ansible_oob_ssh_variables(load) -> None:
    inv = load(
        "hosts.yaml",
        """
        all:
          vars: {oob_ssh_user: oob}
          hosts:
            web01: {bmc_address: 192.0.2.1, oob_ssh_port: 2200}
        """,
    )
    assert inv.hosts["web01"].ssh == SshConfig("oob", 2200)
