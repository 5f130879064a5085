"""A real sshd on 127.0.0.1 whose logins run the fake ESXi tools (:mod:`tests.esxi.fake_esxi`),
an OpenSSH client configuration naming it ``esxi01``, and inventories of ESXi guests."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mocks.sshd import SshKeys, SshServer
from oob.ssh import CONFIG_ENV
from tests.esxi.fake_esxi import FakeEsxi, environment_line


@dataclass(frozen=True)
class EsxiHost:
    sshd: SshServer
    fake: FakeEsxi
    #: an OpenSSH client configuration: Host esxi01 -> this sshd, its key and known_hosts
    ssh_config: Path


@pytest.fixture(scope="session")
def esxi_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EsxiHost]:
    workdir = tmp_path_factory.mktemp("esxi")
    keys = SshKeys.create(workdir / "sshd")
    fake = FakeEsxi.create(workdir / "fake", workdir / "sshd" / "sshd.pid")
    public = Path(f"{keys.client_key}.pub").read_text().strip()
    keys.authorized_keys.write_text(environment_line(public, fake.bin) + "\n")
    sshd = SshServer.start(workdir / "sshd", keys=keys, extra_config=["PermitUserEnvironment PATH"])
    config = workdir / "ssh_config"
    config.write_text(
        textwrap.dedent(
            f"""\
            Host esxi01
                HostName {sshd.host}
                Port {sshd.port}
                User {sshd.user}
                IdentityFile {sshd.client_key}
                UserKnownHostsFile {sshd.known_hosts}
                IdentitiesOnly yes
            """
        )
    )
    try:
        yield EsxiHost(sshd, fake, config)
    finally:
        sshd.stop()


@pytest.fixture
def esxi(esxi_server: EsxiHost, monkeypatch: pytest.MonkeyPatch) -> EsxiHost:
    """The server with a fresh state (one running VM, web01) and $OOB_SSH_CONFIG naming it."""
    esxi_server.fake.reset()
    monkeypatch.setenv(CONFIG_ENV, str(esxi_server.ssh_config))
    return esxi_server


def esxi_inventory(
    path: Path, guests: dict[str, str], *, address: str = "esxi01", timeout: float = 10
) -> Path:
    """An inventory of ESXi guests: host name -> the VM's display name (TOML-escaped here)."""
    import json

    blocks = [
        f"[hosts.{name}]\n"
        'bmc.kind = "esxi"\n'
        f"bmc.address = {json.dumps(address)}\n"
        f"bmc.domain = {json.dumps(domain)}\n"
        f"bmc.timeout = {timeout}\n"
        for name, domain in guests.items()
    ]
    path.write_text("\n".join(blocks))
    return path
