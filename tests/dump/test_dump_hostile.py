"""A dump target is written by a crashed host, and served by a server that may hang: the
watcher reads regular files only, never through a symbolic link, reads little of each, lists
a bounded number of entries, and every call it makes ends by its bounds (issue items 6, 7).

The watches run in-process on real files and a real sshd; the same cases through the real
``oob watch`` process (and Ctrl-C) are in test_dump_hostile_cli.py."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mocks.host import ManualClock
from mocks.kdump import KdumpWriter
from mocks.sshd import SshServer
from oob.dump import targets as targets_module
from oob.dump.targets import (
    MAX_READ,
    FileTarget,
    Targets,
    _ListingBuilder,
    bounded,
    call_bounds,
    name_problem,
    parse_target,
)
from oob.dump.watcher import DumpState
from oob.errors import DumpTargetError
from oob.ssh import SshOptions

from .conftest import FAST, FIFO_SECRET, WatchRun, fast_spec, make_host

SECRET = "SECRET-d41d8cd98f00b204"
ADDRESS = "192.0.2.11"
SHORT = dataclasses.replace(FAST, timeout=2.0)


def finished_dump(root: Path, layout: str = "rhel-nfs", identity: str = ADDRESS) -> KdumpWriter:
    writer = KdumpWriter(root, fast_spec(layout, identity=identity), clock=ManualClock())
    list(writer.steps())
    assert writer.directory is not None
    return writer


def everything_said(run: WatchRun) -> str:
    """Every event and result, as --json would write them."""
    return json.dumps([e.to_dict() for e in run.events] + [r.to_dict() for r in run.results])


def suspicious(run: WatchRun) -> list[str]:
    return [f"{e.data['location']}: {e.data['problem']}" for e in run.events if e.kind == "dump_suspicious"]


@pytest.fixture
def crash(tmp_path: Path) -> Path:
    root = tmp_path / "crash"
    root.mkdir()
    return root


def watch_one(run_watch: Callable[..., WatchRun], root: Path, options=SHORT) -> WatchRun:  # type: ignore[no-untyped-def]
    host = make_host("web01", f"file://{root}", address=ADDRESS)
    return run_watch([host], options=options, since=time.time() - 300)


# -- symbolic links (item 7) -------------------------------------------------------------------


def test_symlinked_dmesg_to_a_secret_is_never_read(tmp_path: Path, crash: Path, run_watch) -> None:
    secret = tmp_path / "shadow"
    secret.write_text(f"[ 1.0] Kernel panic - not syncing: {SECRET}\n[ 1.1] RIP: {SECRET}\n")
    writer = finished_dump(crash)
    dmesg = writer.directory / "vmcore-dmesg.txt"  # type: ignore[operator]
    dmesg.unlink()
    dmesg.symlink_to(secret)

    run = watch_one(run_watch, crash)

    result = run.result("web01")
    # the vmcore itself is real: the dump is complete, but has no panic lines to show
    assert result.state is DumpState.COMPLETE, result.message
    assert result.panic.lines == ()
    assert SECRET not in everything_said(run)
    assert suspicious(run) == [f"{dmesg}: a symbolic link; not read and not counted toward a complete dump"]


@pytest.mark.parametrize("points_to", ["a complete vmcore elsewhere", "/dev/zero"])
def test_symlinked_vmcore_never_counts_as_complete(
    tmp_path: Path, crash: Path, run_watch, points_to: str
) -> None:
    writer = finished_dump(crash)
    vmcore = writer.directory / "vmcore"  # type: ignore[operator]
    if points_to == "/dev/zero":
        vmcore.unlink()
        vmcore.symlink_to("/dev/zero")
    else:
        elsewhere = tmp_path / "big.vmcore"
        vmcore.rename(elsewhere)
        vmcore.symlink_to(elsewhere)

    run = watch_one(run_watch, crash)

    result = run.result("web01")
    # kdump's own log is there (it finished): without a real vmcore, the dump failed
    assert result.state is DumpState.FAILED
    assert "refused: vmcore (a symbolic link)" in result.message
    assert result.size == 0 and result.format is None
    assert "dump_complete" not in run.kinds()
    assert suspicious(run) == [f"{vmcore}: a symbolic link; not read and not counted toward a complete dump"]


def test_symlinked_dump_directory_is_not_followed(tmp_path: Path, crash: Path, run_watch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    writer = finished_dump(elsewhere)
    link = crash / writer.directory.name  # type: ignore[union-attr]
    link.symlink_to(writer.directory)  # type: ignore[arg-type]

    run = watch_one(run_watch, crash)

    result = run.result("web01")
    assert result.state is DumpState.TIMEOUT and result.directory is None
    assert "dump_dir_appeared" not in run.kinds()
    assert suspicious(run) == [f"{link}: named like a dump directory but a symbolic link; not followed"]
    assert [e.host for e in run.events if e.kind == "dump_suspicious"] == ["web01"]


# -- FIFOs and files that never end (item 6) ----------------------------------------------------


def test_fifos_named_like_dump_files_are_not_opened(crash: Path, run_watch, endless_fifo_writers) -> None:
    writer = finished_dump(crash)
    directory = writer.directory
    assert directory is not None
    # a dump "being written": vmcore-incomplete and the kernel log are FIFOs fed forever
    (directory / "kexec-dmesg.log").unlink()
    (directory / "vmcore").unlink()
    (directory / "vmcore-dmesg.txt").unlink()
    endless_fifo_writers(directory / "vmcore-incomplete")
    endless_fifo_writers(directory / "vmcore-dmesg.txt")

    run = watch_one(run_watch, crash)

    result = run.result("web01")
    # no regular file ever grew: stalled (not waited for until the deadline)
    assert result.state is DumpState.STALLED
    assert (
        "refused: vmcore-dmesg.txt (a FIFO, device or socket), vmcore-incomplete (a FIFO, device or socket)"
        in result.message
    )
    assert FIFO_SECRET.decode() not in everything_said(run)
    assert len(suspicious(run)) == 2


def test_huge_dmesg_and_endless_vmcore_are_read_only_in_part(crash: Path, run_watch) -> None:
    writer = KdumpWriter(crash, fast_spec("rhel-nfs", identity=ADDRESS), clock=ManualClock())
    for _step in writer.steps():  # up to the vmcore, then keep it growing ourselves
        if writer.directory is not None and (writer.directory / "vmcore-incomplete").exists():
            break
    directory = writer.directory
    assert directory is not None
    # a 64 GiB kernel log (sparse), its panic at the very end: only its tail is read
    panic = b"\n[ 9.9] Kernel panic - not syncing: NMI: Not continuing\n"
    with open(directory / "vmcore-dmesg.txt", "r+b") as handle:
        handle.seek((64 << 30) - len(panic))
        handle.write(panic)
    stop = threading.Event()

    def grow() -> None:
        with open(directory / "vmcore-incomplete", "ab") as handle:
            while not stop.wait(0.01) and handle.tell() < (16 << 20):
                handle.write(b"\0" * 65536)
                handle.flush()

    grower = threading.Thread(target=grow, daemon=True)
    grower.start()
    try:
        run = watch_one(run_watch, crash)
    finally:
        stop.set()
        grower.join()

    result = run.result("web01")
    assert result.state is DumpState.TIMEOUT and result.last_state in ("writing", "stalled")
    assert result.panic.panic_line == "Kernel panic - not syncing: NMI: Not continuing"


# -- bounded listings and names ------------------------------------------------------------------


def test_listing_is_capped_and_says_so(crash: Path, run_watch, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(targets_module, "MAX_ENTRIES", 20)
    for index in range(30):
        (crash / f"junk-{index:03d}").write_text("")
    listing = asyncio.run(FileTarget(parse_target(f"file://{crash}")).listdir())
    assert listing is not None and len(listing) == 20 and listing.truncated

    run = watch_one(run_watch, crash, options=dataclasses.replace(FAST, timeout=0.5))
    # (a listing the watch's own end cut short on a loaded machine says so too: not this test's)
    problems = [
        e.data["problem"]
        for e in run.events
        if e.kind == "dump_target_problem" and "(the watch's deadline came)" not in e.data["problem"]
    ]
    assert problems == [
        (
            "more than 20 entries: only the first 20 are read each time, so a new dump "
            "directory may be missed (move old dumps away)"
        )
    ]


def test_names_are_checked_but_control_characters_are_kept(crash: Path) -> None:
    odd = "evil\x1b[2J\x07name"
    (crash / odd).write_text("")
    listing = asyncio.run(FileTarget(parse_target(f"file://{crash}")).listdir())
    assert listing is not None and [e.name for e in listing] == [odd]
    assert name_problem(odd) is None
    for bad in ("", ".", "..", "a/b", "a\0b", "caf\udce9"):
        assert name_problem(bad) is not None, bad


def test_sizes_and_times_from_a_server_are_checked() -> None:
    builder = _ListingBuilder()
    builder.add("vmcore", 2**64 - 1, float("nan"), stat.S_IFREG | 0o644)
    builder.add("vmcore-dmesg.txt", -5, 1e300, stat.S_IFREG | 0o644)
    builder.add("a/b", 10, 0.0, stat.S_IFREG | 0o644)
    builder.add("evil", 10, 0.0, None)  # no mode at all: never read
    listing = builder.build()
    assert [(e.name, e.size, e.mtime, e.kind) for e in listing] == [
        ("vmcore", 0, 0.0, "file"),
        ("vmcore-dmesg.txt", 0, 0.0, "file"),
        ("evil", 10, 0.0, "other"),
    ]
    assert listing.bad_names == 1
    assert listing.warnings() == ["1 entry with an impossible name ('/', NUL or not UTF-8) ignored"]


# -- reads refuse what is not a regular file ----------------------------------------------------


def test_file_target_reads_only_regular_files(tmp_path: Path, crash: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    (crash / "link").symlink_to(secret)
    (crash / "zero").symlink_to("/dev/zero")
    os.mkfifo(crash / "fifo")  # no writer: opening it for reading without O_NONBLOCK would hang
    (crash / "dir").mkdir()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(crash / "sock"))
    (crash / "dirlink").symlink_to(tmp_path)
    target = FileTarget(parse_target(f"file://{crash}"))

    async def refusals() -> dict[str, str]:
        found = {}
        for name in ("link", "zero", "fifo", "dir", "sock"):
            with pytest.raises(DumpTargetError) as caught:
                await target.read_tail(name, size=1024)
            found[name] = caught.value.message
        with pytest.raises(DumpTargetError) as caught:
            await target.listdir("dirlink")
        found["dirlink"] = caught.value.message
        return found

    try:
        found = asyncio.run(refusals())
    finally:
        sock.close()
    assert found == {
        "link": f"{crash}/link: a symbolic link, not a regular file; not read",
        "zero": f"{crash}/zero: a symbolic link, not a regular file; not read",
        "fifo": f"{crash}/fifo: a FIFO, device or socket, not a regular file; not read",
        "dir": f"{crash}/dir: a directory, not a regular file; not read",
        "sock": f"{crash}/sock: a FIFO, device or socket, not a regular file; not read",
        "dirlink": f"{crash}/dirlink: a symbolic link, not a directory; not read",
    }
    assert SECRET not in json.dumps(found)
    kinds = {e.name: e.kind for e in asyncio.run(target.listdir()) or ()}
    assert kinds == {
        "link": "symlink",
        "zero": "symlink",
        "fifo": "other",
        "dir": "dir",
        "sock": "other",
        "dirlink": "symlink",
    }


def test_reads_are_bounded_whatever_is_asked(crash: Path) -> None:
    with open(crash / "huge", "wb") as handle:
        handle.truncate(8 << 30)  # sparse
    target = FileTarget(parse_target(f"file://{crash}"))
    assert len(asyncio.run(target.read_head("huge", size=1 << 40))) == MAX_READ


# -- every call is bounded ------------------------------------------------------------------------


def test_a_call_that_never_answers_is_abandoned_at_its_bound() -> None:
    async def main() -> str:
        with call_bounds(op_timeout=0.2), pytest.raises(DumpTargetError) as caught:
            await bounded("list", "dumpsrv:/var/crash", lambda: asyncio.Event().wait())
        return caught.value.message

    assert asyncio.run(main()) == (
        "dumpsrv:/var/crash: stalled: no answer to list within 0.2 s (its time limit "
        "passed); the file system there may be hung (NFS?)"
    )


def test_the_deadline_bounds_a_call_below_its_own_limit() -> None:
    async def main() -> str:
        deadline = asyncio.get_running_loop().time() + 0.2
        with call_bounds(op_timeout=3600, deadline=deadline), pytest.raises(DumpTargetError) as caught:
            await bounded("read", "/var/crash/x/vmcore", lambda: asyncio.Event().wait())
        return caught.value.message

    assert "(the watch's deadline came)" in asyncio.run(main())


def test_a_file_system_call_stuck_in_its_thread_is_abandoned(crash: Path) -> None:
    """What a hung NFS mount does to a thread (it cannot be killed): the wait is bounded, the
    thread is a daemon (it does not keep oob from exiting) and is left behind."""
    release = threading.Event()
    target = FileTarget(parse_target(f"file://{crash}"))

    async def main() -> str:
        with call_bounds(op_timeout=0.3), pytest.raises(DumpTargetError) as caught:
            await target._run("read", f"{crash}/vmcore", lambda: release.wait(60))
        return caught.value.message

    try:
        message = asyncio.run(main())
        stuck = [t for t in threading.enumerate() if t.name == "oob-dump-fs"]
        assert stuck and all(t.daemon for t in stuck)
    finally:
        release.set()
    assert message.startswith(f"{crash}/vmcore: stalled: no answer to read within 0.3 s")


# -- SFTP: lstat first, and a server that stops answering ----------------------------------------


def test_sftp_refuses_links_fifos_and_linked_directories(
    tmp_path: Path, sshd: SshServer, ssh_options: SshOptions
) -> None:
    root = tmp_path / "dumpsrv"
    root.mkdir()
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    (root / "link").symlink_to(secret)
    os.mkfifo(root / "fifo")  # opening it would hang the server's sftp-server
    (root / "dirlink").symlink_to(tmp_path)
    (root / "plain").write_text("fine")

    async def main() -> dict[str, str]:
        targets = Targets(ssh_options)
        target = targets.get(sshd.url(root))
        found = {}
        try:
            with call_bounds(op_timeout=10):
                for name in ("link", "fifo"):
                    with pytest.raises(DumpTargetError) as caught:
                        await target.read_head(name, size=1024)
                    found[name] = caught.value.message
                with pytest.raises(DumpTargetError) as caught:
                    await target.listdir("dirlink")
                found["dirlink"] = caught.value.message
                found["plain"] = (await target.read_head("plain", size=1024)).decode()
                listing = await target.listdir()
                found["kinds"] = json.dumps(sorted((e.name, e.kind) for e in listing or ()))
        finally:
            await targets.close()
        return found

    found = asyncio.run(main())
    where = sshd.url(root).removeprefix("ssh://").replace(f":{sshd.port}/", f":{sshd.port}:/")
    assert found["link"] == f"{where}/link: a symbolic link, not a regular file; not read"
    assert found["fifo"] == f"{where}/fifo: a FIFO, device or socket, not a regular file; not read"
    assert found["dirlink"] == f"{where}/dirlink: a symbolic link, not a directory; not read"
    assert found["plain"] == "fine"
    assert json.loads(found["kinds"]) == [
        ["dirlink", "symlink"],
        ["fifo", "other"],
        ["link", "symlink"],
        ["plain", "file"],
    ]


@pytest.fixture(scope="module")
def stalling_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """Its SFTP server answers four READDIRs per connection (two listings), then nothing."""
    server = SshServer.start(tmp_path_factory.mktemp("stalling-sshd"), sftp_stall_after_readdirs=4)
    try:
        yield server
    finally:
        server.stop()


def test_sftp_server_that_stops_answering_mid_dump_ends_by_the_deadline(
    tmp_path: Path, stalling_sshd: SshServer, run_watch
) -> None:
    root = tmp_path / "dumpsrv"
    root.mkdir()
    writer = finished_dump(root)
    host = make_host("web01", stalling_sshd.url(root), address=ADDRESS)
    # keepalives every 0.2 s: sshd answers them all along (only its SFTP server hangs)
    options = SshOptions(
        known_hosts=str(stalling_sshd.known_hosts),
        identity_files=(str(stalling_sshd.client_key),),
        keepalive_interval=0.2,
    )
    # baseline: one listing; first look: one listing (the dump appears); then its own
    # listing never answers
    run = run_watch(
        [host],
        options=dataclasses.replace(SHORT, timeout=3.0, op_timeout=1.0),
        ssh=options,
        since=time.time() - 300,
    )

    assert stalling_sshd.sftp_stalled()
    result = run.result("web01")
    assert result.state is DumpState.TIMEOUT and result.last_state == "appeared"
    where = f"{stalling_sshd.user}@127.0.0.1:{stalling_sshd.port}:{writer.directory}"
    assert f"last error: {where}: stalled: no answer to list within" in result.message
    problems = [e.data["problem"] for e in run.events if e.kind == "dump_target_problem"]
    assert any(
        p.startswith(f"{where}: stalled: no answer to list within 1.0 s (its time limit passed)")
        for p in problems
    )
