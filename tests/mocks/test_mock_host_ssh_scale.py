"""The hosts' SSH beyond OpenSSH's 16 listening addresses per sshd: a 40-host fleet answers
SSH on every host's own address (several sshd, one host key, one known_hosts), oob's
preflight passes for all of them, and no sshd outlives the fleet."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mocks.sshd import MAX_LISTEN_ADDRESSES, SshdPortInUse, SshServer, SshServerGroup
from tests.conftest import CliResult, write_inventory

GIB = 1 << 30
HOSTS = 40


def _alive(pid: int) -> bool:
    """Running (a zombie, reaped or not, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


@pytest.fixture(scope="module")
def big_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    """40 hosts with their SSH, each showing its own RAM size so that answers can be told apart."""
    from mocks.fleet import Fleet

    tmp = tmp_path_factory.mktemp("sshscale")
    fleet = Fleet.start(
        vendors=["idrac9", "openbmc"],
        count=HOSTS // 2,
        workdir=tmp / "fleet",
        dump_root=tmp / "crash",
        layouts=["rhel", "suse", "debian"],
        scale=0.02,
        host_ssh=True,
    )
    try:
        for index, bmc in enumerate(fleet.bmcs):
            fleet.host_ssh.configure(bmc.name, mem_total=(16 + index) * GIB)
        yield fleet, write_inventory(fleet, tmp / "inv.toml")
    finally:
        fleet.stop()


#: the address sshd accepted the connection on, the RAM of the host's own tree, and HOME
WHO = 'set -- $SSH_CONNECTION; echo "$3"; cat /proc/meminfo | head -n 1; echo "$HOME"\n'


def _ssh_login(fleet: Any, address: str, script: str = WHO) -> subprocess.CompletedProcess[str]:
    """The real OpenSSH client, non-interactive, trusting only the fleet's known_hosts."""
    ssh = fleet.host_ssh
    command = [
        "ssh", "-F", "none", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={ssh.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10", "-i", str(ssh.client_key),
        "-p", str(ssh.port), f"{ssh.user}@{address}", "sh -s",
    ]  # fmt: skip
    return subprocess.run(command, input=script, capture_output=True, text=True, timeout=30, check=False)


def test_the_openssh_client_logs_in_across_the_listeners(big_fleet: tuple[Any, Path]) -> None:
    """The stock client, strict about host keys, with the fleet's one known_hosts and key:
    the first and last address of every sshd (the preflight below covers every host)."""
    fleet, _ = big_fleet
    if shutil.which("ssh") is None:
        pytest.fail("the OpenSSH client (ssh) is needed: install openssh-client")
    group = fleet.host_ssh.server
    addresses = [bmc.host_address for bmc in fleet.bmcs]
    assert len(set(addresses)) == HOSTS
    # more addresses than one sshd can take: three listeners, each on at most 16 of them
    assert len(group.pids()) == 3 and all(_alive(pid) for pid in group.pids())
    assert all(len(server.addresses) <= MAX_LISTEN_ADDRESSES for server in group.servers)
    assert sorted(a for server in group.servers for a in server.addresses) == sorted(addresses)
    edges = [address for server in group.servers for address in (server.addresses[0], server.addresses[-1])]
    logins_before = [server.accepted_logins() for server in group.servers]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = dict(zip(edges, pool.map(lambda a: _ssh_login(fleet, a), edges), strict=True))
    for address, result in results.items():
        index = addresses.index(address)
        assert result.returncode == 0, f"{address}: {result.stderr}"
        assert result.stdout.split("\n")[:3] == [
            address,
            f"MemTotal:       {(16 + index) * GIB // 1024} kB",
            # the sshd's own empty HOME: the user's shell rc files do not run for each session
            str(group.server_for(address).workdir / "home"),
        ]
    # each login was served by the sshd listening on that address
    logins = [
        server.accepted_logins() - before for server, before in zip(group.servers, logins_before, strict=True)
    ]
    assert logins == [2, 2, 2]


def test_preflight_passes_for_all_forty_hosts(
    big_fleet: tuple[Any, Path], oob: Callable[..., CliResult]
) -> None:
    fleet, inventory = big_fleet
    ssh = fleet.host_ssh
    result = oob(
        "preflight", "all", "-i", str(inventory), "--json", "--parallel", "16",
        "--known-hosts", str(ssh.known_hosts), "--ssh-key", str(ssh.client_key),
    )  # fmt: skip
    assert result.code == 0, result.stdout[-2000:] + result.stderr[-2000:]
    records = {r["host"]: r for r in result.records if r.get("event") == "readiness"}
    assert sorted(records) == sorted(bmc.name for bmc in fleet.bmcs)
    for index, bmc in enumerate(fleet.bmcs):
        record = records[bmc.name]
        assert record["ready"] is True and record["exit_code"] == 0, record
        # the SSH side came from this host's own tree, through its own address
        assert record["ram"] == (16 + index) * GIB
        assert bmc.open_sessions == 0 and bmc.nmi_count == 0
    summary = next(r for r in result.records if r.get("event") == "summary")
    assert (summary["hosts"], summary["ready"], summary["not_ready"]) == (HOSTS, HOSTS, [])
    # every host was reached on its own address, by the sshd listening there
    for server in ssh.server.servers:
        log = server.log()
        assert all(f" on {address} port {ssh.port} " in log for address in server.addresses), log[-2000:]


def test_sysrq_past_the_first_sshd_and_no_sshd_outlives_the_fleet(tmp_path: Path) -> None:
    from mocks.fleet import Fleet

    fleet = Fleet.start(vendors=["openbmc"], count=20, workdir=tmp_path / "fleet", host_ssh=True)
    try:
        group = fleet.host_ssh.server
        pids = group.pids()
        assert len(pids) == 2 and all(_alive(pid) for pid in pids)
        # the trigger watcher sees a write on a host the second sshd serves (and on no other)
        last = fleet.bmcs[-1]
        assert group.server_for(last.host_address) is group.servers[1]
        crash = _ssh_login(fleet, last.host_address, "printf c | tee /proc/sysrq-trigger >/dev/null\n")
        assert crash.returncode == 0, crash.stderr
        deadline = time.monotonic() + 10
        while not any(r.event == "sysrq_crash" for r in last.host.history) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert any(r.event == "sysrq_crash" for r in last.host.history)
        assert not any(r.event == "sysrq_crash" for b in fleet.bmcs[:-1] for r in b.host.history)
        # a connection left open: its per-connection sshd goes too
        held = socket.create_connection((fleet.bmcs[0].host_address, group.port), timeout=5)
        assert held.recv(64).startswith(b"SSH-2.0-")
    finally:
        fleet.stop()
    try:
        assert [pid for pid in pids if _alive(pid)] == []
        assert held.recv(64) == b""  # closed by the server's side
    finally:
        held.close()


def test_one_sshd_refuses_more_than_sixteen_addresses(tmp_path: Path) -> None:
    addresses = [f"127.0.1.{n}" for n in range(201, 218)]
    with pytest.raises(ValueError, match="at most 16 addresses"):
        SshServer.start(tmp_path / "one", host=addresses[0], also_listen=addresses[1:])


def test_an_address_it_cannot_bind_fails_the_start(tmp_path: Path) -> None:
    """sshd carries on with the addresses it could bind; the mock must not."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.1.222", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SshdPortInUse, match="could not listen on every address") as failed:
            SshServer.start(tmp_path / "one", host="127.0.1.221", port=port, also_listen=["127.0.1.222"])
        assert "Address already in use" in str(failed.value)
    # and it stopped the sshd it had started
    with pytest.raises(OSError):
        socket.create_connection(("127.0.1.221", port), timeout=2).close()


def test_a_port_taken_on_its_only_address_is_told_apart(tmp_path: Path) -> None:
    """sshd exits ("Cannot bind any address"): the one failure another port cures."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.1.223", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SshdPortInUse, match="exited at start"):
            SshServer.start(tmp_path / "one", host="127.0.1.223", port=port)


def test_group_on_the_loopback_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="loopback"):
        SshServerGroup.start(tmp_path / "g", ["127.0.1.230", "192.0.2.5"])
    assert not (tmp_path / "g").exists()  # refused before anything was made or started


def test_a_port_taken_meanwhile_restarts_the_whole_group_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process binds the chosen port on one address between the check and sshd's
    bind (forced here: the check is skipped once): the sshd that did start are stopped, and
    the group starts again on another port."""
    import mocks.sshd

    addresses = [f"127.0.1.{n}" for n in range(180, 200)]  # two sshd: 16 + 4
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind((addresses[17], 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = iter([port])
        real_free_port = mocks.sshd._free_port
        monkeypatch.setattr(mocks.sshd, "_free_port", lambda host: next(ports, None) or real_free_port(host))
        monkeypatch.setattr(mocks.sshd, "_port_free_on", lambda port, addresses: True)
        with SshServerGroup.start(tmp_path / "g", addresses) as group:
            assert group.port != port and len(group.pids()) == 2
            # the first attempt's sshd on the other 16 addresses is gone
            with pytest.raises(OSError):
                socket.create_connection((addresses[0], port), timeout=2).close()
            with socket.create_connection((addresses[17], group.port), timeout=5) as answered:
                assert answered.recv(64).startswith(b"SSH-2.0-")
