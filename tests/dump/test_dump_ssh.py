"""SSH dump targets against a real sshd on 127.0.0.1: host keys, logins, one connection per
server, and reads that never copy a vmcore."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from mocks.kdump import KdumpWriter
from mocks.sshd import SshServer, generate_keypair
from oob.dump.formats import HEAD_SIZE, TAIL_SIZE
from oob.dump.panic import DMESG_TAIL
from oob.dump.targets import Targets, parse_target
from oob.dump.watcher import DumpState, DumpWatcher
from oob.errors import DumpTargetError, HostKeyError, UsageError
from oob.ssh import SshOptions

from .conftest import FAST, fast_spec, make_host


async def list_root(url: str, options: SshOptions) -> tuple[list[str], int]:
    targets = Targets(options)
    try:
        entries = await targets.get(url).listdir()
        return sorted(e.name for e in entries or []), targets.connections_opened
    finally:
        await targets.close()


def test_unknown_host_key_is_refused_in_one_line(tmp_path: Path, sshd: SshServer) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    options = SshOptions(known_hosts=str(empty), identity_files=(str(sshd.client_key),))
    with pytest.raises(HostKeyError) as caught:
        asyncio.run(list_root(sshd.url(tmp_path), options))
    message = str(caught.value)
    assert "\n" not in message
    assert f"ssh 127.0.0.1:{sshd.port}: host key unknown" in message
    assert "--accept-new-host-key" in message
    assert caught.value.exit_code == 5
    assert empty.read_text() == ""  # nothing recorded without the user's say-so


def test_missing_known_hosts_file_is_an_unknown_key(tmp_path: Path, sshd: SshServer) -> None:
    options = SshOptions(known_hosts=str(tmp_path / "nope"), identity_files=(str(sshd.client_key),))
    with pytest.raises(HostKeyError, match="host key unknown"):
        asyncio.run(list_root(sshd.url(tmp_path), options))


def test_new_host_key_accepted_when_asked_and_recorded(tmp_path: Path, sshd: SshServer) -> None:
    known = tmp_path / "ssh" / "known_hosts"
    (tmp_path / "crash").mkdir()
    (tmp_path / "crash" / "kexec_cmd").write_text("")
    options = SshOptions(
        known_hosts=str(known), accept_new_host_key=True, identity_files=(str(sshd.client_key),)
    )
    names, opened = asyncio.run(list_root(sshd.url(tmp_path / "crash"), options))
    assert names == ["kexec_cmd"] and opened == 1  # the connection that learnt the key is used
    assert known.read_text() == f"{sshd.host_pattern} {sshd.host_key}\n"
    # from now on the key is simply known
    strict = SshOptions(known_hosts=str(known), identity_files=(str(sshd.client_key),))
    assert asyncio.run(list_root(sshd.url(tmp_path / "crash"), strict))[0] == ["kexec_cmd"]


def test_changed_host_key_is_refused_even_when_accepting_new(tmp_path: Path, sshd: SshServer) -> None:
    other = generate_keypair(tmp_path / "other_key", "impostor").rsplit(" ", 1)[0]
    known = tmp_path / "known_hosts"
    known.write_text(f"{sshd.host_pattern} {other}\n")
    options = SshOptions(
        known_hosts=str(known), accept_new_host_key=True, identity_files=(str(sshd.client_key),)
    )
    with pytest.raises(HostKeyError, match="host key has CHANGED") as caught:
        asyncio.run(list_root(sshd.url(tmp_path), options))
    assert "\n" not in str(caught.value)
    assert known.read_text() == f"{sshd.host_pattern} {other}\n"


def test_login_refused_without_the_right_key(tmp_path: Path, sshd: SshServer) -> None:
    generate_keypair(tmp_path / "stranger", "stranger")
    options = SshOptions(known_hosts=str(sshd.known_hosts), identity_files=(str(tmp_path / "stranger"),))
    with pytest.raises(DumpTargetError, match="login refused \\(publickey\\).*never uses passwords"):
        asyncio.run(list_root(sshd.url(tmp_path), options))


def test_connection_refused_and_missing_path(
    tmp_path: Path, sshd: SshServer, ssh_options: SshOptions
) -> None:
    with pytest.raises(DumpTargetError, match="no such directory"):
        asyncio.run(list_root(sshd.url(tmp_path / "missing"), ssh_options))
    closed = SshServer.start(tmp_path / "closed")
    url = closed.url(tmp_path)
    closed.stop()
    with pytest.raises(DumpTargetError, match="cannot connect"):
        asyncio.run(list_root(url, ssh_options))


def test_target_urls() -> None:
    spec = parse_target("ssh://kdump@[fd00::5]:2222/srv/crash/")
    assert (spec.user, spec.server, spec.port, spec.path) == ("kdump", "fd00::5", 2222, "/srv/crash")
    assert spec.location("dir") == "kdump@[fd00::5]:2222:/srv/crash/dir"
    assert (
        parse_target("ssh://root@dumpsrv/var/crash").key
        == parse_target("ssh://root@DUMPSRV:22/var/crash/").key
    )
    assert parse_target("file:///mnt/crash").path == "/mnt/crash"
    assert parse_target("/mnt/crash").scheme == "file"
    for bad in (
        "ssh://dumpsrv/var/crash",
        "ssh://root:pw@dumpsrv/x",
        "ftp://x/y",
        "file://other/x",
        "ssh://root@dumpsrv:99999/x",
        "ssh://root@dumpsrv/x?y=1",
    ):
        with pytest.raises(UsageError):
            parse_target(bad)


def test_many_targets_on_one_server_share_one_connection(
    tmp_path: Path, sshd: SshServer, ssh_options: SshOptions
) -> None:
    roots = []
    for index in range(5):
        root = tmp_path / f"crash{index}"
        root.mkdir()
        roots.append(root)
    hosts = [make_host(f"h{i}", sshd.url(root), address=f"192.0.2.{i + 1}") for i, root in enumerate(roots)]
    before = sshd.accepted_logins()

    async def run() -> int:
        async with DumpWatcher(hosts, FAST, ssh=ssh_options) as watcher:
            await watcher.take_baseline()
            return watcher.connections_opened

    assert asyncio.run(run()) == 1
    assert sshd.accepted_logins() - before == 1


def test_panic_lines_read_remotely_without_copying_the_vmcore(
    tmp_path: Path, sshd: SshServer, ssh_options: SshOptions, run_watch
) -> None:
    root = tmp_path / "crash"
    root.mkdir()
    size = 2 * 1024 * 1024  # far more than the watcher may read
    writers = [
        KdumpWriter(
            root, fast_spec("rhel-ssh", identity="192.0.2.1", size=size, chunk=256 * 1024, rate=50e6)
        ),
        KdumpWriter(root, fast_spec("suse-ssh", identity="sles", size=size, chunk=256 * 1024, rate=50e6)),
    ]
    hosts = [make_host("rhel", sshd.url(root), address="192.0.2.1"), make_host("sles", sshd.url(root))]
    run = run_watch(hosts, writers, ssh=ssh_options)
    for host in ("rhel", "sles"):
        result = run.result(host)
        assert result.state is DumpState.COMPLETE
        assert result.panic.cause == "unknown_nmi"
        assert result.format is not None and result.format.end_marker is True
    reads = [(path, count) for path, count in sshd.sftp_reads() if path.startswith(str(root))]
    assert reads, "sftp-server logged no reads"
    for path, count in reads:
        name = Path(path).name
        if name.startswith(("vmcore", "dump")) and name != "vmcore-dmesg.txt":
            assert count in (HEAD_SIZE, TAIL_SIZE), (path, count)
        else:
            assert count <= max(DMESG_TAIL, 64 * 1024), (path, count)
    total_vmcore = sum(count for path, count in reads if Path(path).name in ("vmcore", "vmcore.flat"))
    assert total_vmcore < size / 10
    tails = [p for p, c in reads if c == TAIL_SIZE]
    assert {Path(p).name for p in tails} == {"vmcore.flat", "vmcore"}  # the end markers, once each


def test_a_dropped_connection_is_reopened(tmp_path: Path) -> None:
    from mocks.sshd import _children

    server = SshServer.start(tmp_path / "sshd")
    try:
        root = tmp_path / "crash"
        root.mkdir()
        options = SshOptions(known_hosts=str(server.known_hosts), identity_files=(str(server.client_key),))
        host = make_host("web01", server.url(root), address="192.0.2.11")
        events: list = []

        async def run() -> tuple[DumpState, int]:
            async with DumpWatcher([host], FAST, ssh=options, emit=events.append) as watcher:
                watcher.begin(await watcher.take_baseline())
                await watcher.poll()
                for pid in _children(server.process.pid):  # the dump server drops us
                    os.kill(pid, signal.SIGTERM)
                await asyncio.sleep(0.2)
                await watcher.poll()  # may fail: reported, not fatal
                writer = KdumpWriter(root, fast_spec("rhel-ssh", identity="192.0.2.11"))
                writer.run()
                for _ in range(20):
                    if await watcher.poll():
                        break
                return watcher.state_of("web01"), watcher.connections_opened

        state, opened = asyncio.run(run())
        assert state is DumpState.COMPLETE
        assert opened == 2
        # depending on when the loss is noticed, one poll may report it (a warning, not fatal)
        problems = [e for e in events if e.kind == "dump_target_problem"]
        assert len(problems) <= 1
        assert all("connection lost" in e.message and e.level == "warning" for e in problems)
    finally:
        server.stop()


def test_blocking_watcher_keeps_one_connection_from_baseline_to_watch(
    tmp_path: Path, sshd: SshServer, ssh_options: SshOptions
) -> None:
    from oob.dump.watcher import BlockingDumpWatcher

    root = tmp_path / "crash"
    root.mkdir()
    events: list = []
    host = make_host("web01", sshd.url(root), address="192.0.2.11")
    with BlockingDumpWatcher([host], FAST, ssh=ssh_options, emit=events.append) as watcher:
        baseline = watcher.take_baseline()
        KdumpWriter(root, fast_spec("debian-ssh", identity="192.0.2.11")).start()
        (result,) = watcher.watch(baseline)
        assert result.state is DumpState.COMPLETE and result.format.kind == "flattened"
        assert watcher.connections_opened == 1
    assert [e.kind for e in events][-1] == "dump_complete"


def test_ipv6_loopback_server(tmp_path: Path) -> None:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    server = SshServer.start(tmp_path / "sshd6", host="::1")
    try:
        assert server.url("/x") == f"ssh://{server.user}@[::1]:{server.port}/x"
        (tmp_path / "crash").mkdir()
        options = SshOptions(known_hosts=str(server.known_hosts), identity_files=(str(server.client_key),))
        assert asyncio.run(list_root(server.url(tmp_path / "crash"), options)) == ([], 1)
    finally:
        server.stop()
