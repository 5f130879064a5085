"""States, step by step on a manual clock: appeared, writing, complete, stalled, failed,
timeout; what counts as new; what is ignored."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mocks.host import ManualClock
from mocks.kdump import KdumpWriter
from oob.dump.watcher import Baseline, DumpState, DumpWatcher, WatchOptions
from oob.errors import UsageError
from oob.events import Event

from .conftest import fast_spec, make_host

OPTIONS = WatchOptions(interval=1.0, stall_after=30.0, timeout=600.0, progress_every=0.0)


class Scene:
    """A watcher and writers sharing one manual clock; every poll is explicit."""

    def __init__(self, root: Path, hosts: list[Any] | None = None, options: WatchOptions = OPTIONS) -> None:
        self.root = root
        self.clock = ManualClock(1000.0)
        self.events: list[Event] = []
        hosts = hosts or [make_host("web01", f"file://{root}", address="192.0.2.11")]
        self.watcher = DumpWatcher(hosts, options, clock=self.clock.now, emit=self.events.append)

    def writer(self, layout: str, **kwargs: Any) -> KdumpWriter:
        kwargs.setdefault("identity", "192.0.2.11")
        return KdumpWriter(self.root, fast_spec(layout, **kwargs), clock=self.clock)

    async def start(self, since: float | None = None) -> None:
        self.watcher.begin(await self.watcher.take_baseline(since))

    async def poll(self, advance: float = 1.0) -> DumpState:
        self.clock.advance(advance)
        await self.watcher.poll()
        return self.watcher.state_of("web01")

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def last(self, kind: str) -> Event:
        return [e for e in self.events if e.kind == kind][-1]


def scene_test(body: Callable[[Scene], Awaitable[None]]) -> Callable[[Path], None]:
    def test(tmp_path: Path) -> None:
        scene = Scene(tmp_path)

        async def run() -> None:
            try:
                await body(scene)
            finally:
                await scene.watcher.close()

        asyncio.run(run())

    test.__name__ = body.__name__
    return test


def append(path: Path, count: int) -> None:
    with open(path, "ab") as handle:
        handle.write(b"\0" * count)


def until(writer: KdumpWriter, action: str, path_part: str = "") -> None:
    for step in writer.steps():
        if step.action == action and path_part in (step.path or ""):
            return
    raise AssertionError(f"the writer never did {action} {path_part}")


@scene_test
async def test_appeared_writing_complete(scene: Scene) -> None:
    await scene.start()
    assert await scene.poll() is DumpState.WAITING
    writer = scene.writer("rhel-nfs", size=64 * 1024, chunk=16 * 1024)
    until(writer, "mkdir")
    assert await scene.poll() is DumpState.APPEARED
    appeared = scene.last("dump_dir_appeared")
    assert appeared.data["directory"] == writer.directory.name
    assert appeared.data["family"] == "rhel"
    until(writer, "write", "vmcore-incomplete")
    assert await scene.poll() is DumpState.WRITING
    progress = scene.last("dump_progress")
    assert progress.data["file"] == "vmcore-incomplete" and progress.data["bytes"] > 0
    until(writer, "write", "vmcore-incomplete")
    await scene.poll(2.0)
    later = scene.last("dump_progress")
    assert later.data["bytes"] > progress.data["bytes"] and later.data["rate"] > 0
    until(writer, "rename", "vmcore-incomplete")
    assert await scene.poll() is DumpState.COMPLETE
    done = scene.last("dump_complete")
    assert done.data["vmcore"] == "vmcore" and done.data["size"] == writer.final_path.stat().st_size
    assert done.data["format"]["kind"] == "kdump-compressed"
    assert done.data["panic_cause"] == "unknown_nmi"
    assert scene.kinds()[0] == "dump_dir_appeared" and scene.kinds()[-1] == "dump_complete"


@scene_test
async def test_a_stall_ends_the_wait_after_stall_after(scene: Scene) -> None:
    await scene.start()
    writer = scene.writer("rhel-ssh", fault="stall", fault_at=0.5)
    list(writer.steps())
    assert await scene.poll() is DumpState.WRITING
    assert await scene.poll(29.0) is DumpState.WRITING  # 29 s without growth: not yet
    assert await scene.poll(1.5) is DumpState.STALLED
    assert DumpState.STALLED.final
    stalled = scene.last("dump_stalled")
    assert scene.kinds().count("dump_stalled") == 1  # one event: the final result
    assert stalled.level == "error"
    assert stalled.data["state"] == "stalled" and stalled.data["idle"] >= 30
    assert stalled.data["file"] == stalled.data["vmcore"] == "vmcore-incomplete"
    assert stalled.data["bytes"] == stalled.data["size"] > 0
    assert "no growth for 30 s while incomplete" in stalled.message
    assert "vmcore-incomplete does not" in stalled.message  # the rule it waits for
    assert "stopped waiting after --stall-after 30 s" in stalled.message
    [result] = scene.watcher.results()
    assert (result.state, result.exit_code) == (DumpState.STALLED, 5)
    append(writer.directory / "vmcore-incomplete", 4096)
    assert await scene.watcher.poll() is True  # final: not looked at again
    assert scene.watcher.state_of("web01") is DumpState.STALLED


def test_stall_grace_waits_longer_and_the_dump_may_resume(tmp_path: Path) -> None:
    scene = Scene(tmp_path, options=replace(OPTIONS, stall_grace=60.0))

    async def run() -> None:
        await scene.start()
        writer = scene.writer("rhel-ssh", fault="stall", fault_at=0.5)
        list(writer.steps())
        assert await scene.poll() is DumpState.WRITING
        await scene.poll(30.5)
        warned = scene.last("dump_stalled")  # said at --stall-after, still waited for
        assert warned.level == "warning" and warned.data["grace"] == 60.0
        assert warned.data["file"] == "vmcore-incomplete" and warned.data["idle"] >= 30
        assert "waiting 60 s more for it to grow (--stall-grace)" in warned.message
        assert await scene.poll(50) is DumpState.WRITING  # 80.5 s idle: inside the grace
        assert scene.kinds().count("dump_stalled") == 1  # said once
        append(writer.directory / "vmcore-incomplete", 4096)  # the NFS server came back
        assert await scene.poll() is DumpState.WRITING
        assert scene.last("dump_progress").data["state"] == "resumed"
        await scene.poll(31)  # stalled again: warned again, waited for again
        assert scene.kinds().count("dump_stalled") == 2
        assert await scene.poll(59) is DumpState.STALLED  # 90 s idle: past --stall-after + grace
        final = scene.last("dump_stalled")
        assert final.data["state"] == "stalled" and final.level == "error"
        assert "and --stall-grace 60 s more" in final.message
        await scene.watcher.close()

    asyncio.run(run())


def test_a_deadline_inside_the_grace_is_a_timeout_that_says_stalled(tmp_path: Path) -> None:
    scene = Scene(tmp_path, options=replace(OPTIONS, stall_grace=3600.0))

    async def run() -> None:
        await scene.start()
        list(scene.writer("rhel-ssh", fault="stall", fault_at=0.5).steps())
        await scene.poll()
        assert await scene.poll(31) is DumpState.WRITING
        scene.clock.advance(600)
        scene.watcher.expire()
        timeout = scene.last("timeout")
        assert timeout.data["last_state"] == "stalled" and timeout.data["state"] == "timeout"
        assert "still incomplete" in timeout.message and "(stalled:" in timeout.message
        await scene.watcher.close()

    asyncio.run(run())


def test_stall_grace_must_not_be_negative() -> None:
    with pytest.raises(UsageError, match="stall-grace must not be negative"):
        WatchOptions(stall_grace=-1.0)


@pytest.mark.parametrize(
    ("layout", "words"),
    [
        ("rhel-local", "gave up: vmcore-incomplete carries its incomplete flag"),
        ("suse", "gave up: vmcore carries its incomplete flag"),
        ("debian", "gave up: dump-incomplete carries its incomplete flag"),
        ("debian-vmcore", "gave up: vmcore-incomplete carries its incomplete flag"),
    ],
)
def test_disk_full_is_a_failure(tmp_path: Path, layout: str, words: str) -> None:
    scene = Scene(tmp_path)

    async def run() -> None:
        await scene.start()
        writer = scene.writer(layout, fault="disk_full")
        until(writer, "disk full")  # kdump has not reacted yet: the flag alone tells
        await scene.poll()
        assert await scene.poll() is DumpState.FAILED
        failed = scene.last("dump_failed")
        assert words in failed.message and "filled up" in failed.message
        assert failed.data["format"]["marked_incomplete"] is True
        assert failed.data["panic_cause"] == "unknown_nmi"
        assert "dump_stalled" not in scene.kinds()
        await scene.watcher.close()

    asyncio.run(run())


@scene_test
async def test_rhel_failure_from_kexec_dmesg_log(scene: Scene) -> None:
    await scene.start()
    writer = scene.writer("rhel-ssh", fault="disk_full")  # a stream: no flag can be set
    list(writer.steps())
    assert await scene.poll() is DumpState.FAILED
    failed = scene.last("dump_failed")
    assert "left vmcore-incomplete: saving the vmcore failed" in failed.message
    assert "kdump: saving vmcore failed, exitcode:1" in failed.data["details"]


@scene_test
async def test_only_kexec_dmesg_log_is_a_failure(scene: Scene) -> None:
    await scene.start()
    directory = scene.root / "192.0.2.11-2024-05-02-03:04:05"
    directory.mkdir()
    (directory / "kexec-dmesg.log").write_text("kdump: dump target is /dev/sdz\nkdump: mount failed\n")
    assert await scene.poll() is DumpState.FAILED
    assert "without saving a vmcore" in scene.last("dump_failed").message
    assert scene.last("dump_failed").data["details"] == ["kdump: mount failed"]


@scene_test
async def test_suse_readme_without_saved_successfully(scene: Scene) -> None:
    await scene.start()
    writer = scene.writer("suse-ssh", identity="web01")
    list(writer.steps())
    # the same dump, but kdump-save wrote a failure status
    readme = writer.directory / "README.txt"
    readme.write_text(readme.read_text().replace("saved successfully", "failed (makedumpfile exit 1)"))
    assert await scene.poll() is DumpState.FAILED
    assert "vmcore status: failed (makedumpfile exit 1)" in scene.last("dump_failed").message


@scene_test
async def test_flattened_without_end_marker_is_truncated(scene: Scene) -> None:
    await scene.start()
    writer = scene.writer("rhel-ssh")
    list(writer.steps())
    vmcore = writer.directory / "vmcore.flat"
    data = vmcore.read_bytes()
    vmcore.write_bytes(data[: len(data) - 4096])
    assert await scene.poll() is not DumpState.COMPLETE  # looks twice (NFS may lag)
    assert await scene.poll() is DumpState.FAILED
    assert "without its end marker: truncated" in scene.last("dump_failed").message


@scene_test
async def test_flattened_disk_full_without_failure_marker_stalls(scene: Scene) -> None:
    # Debian over ssh: makedumpfile -F | ssh cat; a full disk leaves dump-incomplete and nothing else
    await scene.start()
    writer = scene.writer("debian-ssh", fault="disk_full")
    list(writer.steps())
    await scene.poll()
    assert await scene.poll(31) is DumpState.STALLED
    assert "dump_failed" not in scene.kinds()


@scene_test
async def test_timeout_without_any_directory(scene: Scene) -> None:
    await scene.start()
    await scene.poll()
    scene.clock.advance(600)
    scene.watcher.expire()
    result = scene.watcher.results()[0]
    assert result.state is DumpState.TIMEOUT and result.last_state == "waiting"
    assert "no new dump directory for this host appeared" in result.message
    assert result.exit_code == 5


@scene_test
async def test_old_dumps_are_never_reported(scene: Scene) -> None:
    root = scene.root
    # a finished old dump; one whose host clock ran ahead (name in the future); one stalled
    # half-way (it will even grow later); Debian's bookkeeping files
    future = datetime.now() + timedelta(days=300)
    for crash_time, fault in (
        (datetime(2023, 3, 4, 5, 6, 7), None),
        (future, None),
        (datetime(2024, 1, 1), "stall"),
    ):
        list(scene.writer("rhel-nfs", crash_time=crash_time, fault=fault).steps())
    (root / "kexec_cmd").write_text("kexec -p /boot/vmlinuz\n")
    (root / "kdump_lock").write_text("")
    (root / "lost+found").mkdir()
    old = sorted(p.name for p in root.iterdir())
    await scene.start()
    # the new dump is named with a time *older* than the others: the name time decides nothing
    writer = scene.writer("rhel-nfs", crash_time=datetime(2022, 1, 1, 0, 0, 1))
    stalled_old = root / "192.0.2.11-2024-01-01-00:00:00" / "vmcore-incomplete"
    append(stalled_old, 4096)
    list(writer.steps())
    assert await scene.poll() is DumpState.COMPLETE
    directories = {e.data.get("directory") for e in scene.events}
    assert directories == {writer.directory.name}
    assert not directories & set(old)
    assert scene.kinds().count("dump_unattributed") == 0


def test_since_counts_directories_changed_after_it(tmp_path: Path) -> None:
    scene = Scene(tmp_path)

    async def run() -> None:
        old_writer = scene.writer("debian", crash_time=datetime(2024, 5, 1, 10, 0))
        list(old_writer.steps())
        an_hour_ago = time.time() - 3600
        os.utime(old_writer.directory, (an_hour_ago, an_hour_ago))
        # the NMI went out 10 minutes ago; the dump directory is already there
        new_writer = scene.writer("debian", crash_time=datetime(2024, 5, 1, 11, 0))
        until(new_writer, "write", "dump-incomplete")
        await scene.start(since=time.time() - 600)
        assert await scene.poll() is DumpState.WRITING
        list(new_writer.steps())
        assert await scene.poll() is DumpState.COMPLETE
        assert {e.data.get("directory") for e in scene.events} == {new_writer.directory.name}
        await scene.watcher.close()

    asyncio.run(run())


def test_the_newest_new_dump_is_followed_and_the_others_named(tmp_path: Path) -> None:
    scene = Scene(tmp_path)

    async def run() -> None:
        writers = []
        # named in the crashed host's clock, which decides nothing: the server's times do
        for minutes_ago, crash_time in ((8, datetime(2024, 5, 2, 3, 9)), (3, datetime(2024, 5, 2, 3, 1))):
            writer = scene.writer("rhel-nfs", crash_time=crash_time)
            list(writer.steps())
            when = time.time() - 60 * minutes_ago
            os.utime(writer.directory, (when, when))
            writers.append(writer)
        older, newest = writers
        await scene.start(since=time.time() - 600)
        assert await scene.poll() is DumpState.COMPLETE
        assert scene.last("dump_dir_appeared").data["directory"] == newest.directory.name
        assert scene.last("dump_complete").data["directory"] == newest.directory.name
        skipped = scene.last("dump_dirs_skipped")
        assert skipped.level == "warning" and skipped.host == "web01"
        assert skipped.data["following"] == newest.directory.name
        assert skipped.data["skipped"] == [older.directory.name]
        assert older.directory.name in skipped.message
        await scene.watcher.close()

    asyncio.run(run())


def test_a_later_new_dump_is_named_not_followed(tmp_path: Path) -> None:
    # the target is listed while some host on it still waits for its dump (web02 here)
    hosts = [
        make_host("web01", f"file://{tmp_path}", address="192.0.2.11"),
        make_host("web02", f"file://{tmp_path}", address="192.0.2.12"),
    ]
    scene = Scene(tmp_path, hosts)

    async def run() -> None:
        await scene.start()
        first = scene.writer("rhel-nfs", crash_time=datetime(2024, 5, 2, 3, 0))
        until(first, "write", "vmcore-incomplete")
        assert await scene.poll() is DumpState.WRITING
        second = scene.writer("rhel-nfs", crash_time=datetime(2024, 5, 2, 3, 5))
        list(second.steps())
        await scene.poll()
        later = scene.last("dump_dirs_skipped")
        assert later.data == {
            "target": f"{tmp_path}",
            "following": first.directory.name,
            "skipped": [second.directory.name],
        }
        assert "another new dump directory appeared" in later.message
        await scene.poll()
        assert scene.kinds().count("dump_dirs_skipped") == 1  # said once
        await scene.watcher.close()

    asyncio.run(run())


def test_unattributed_and_foreign_dumps_on_a_shared_target(tmp_path: Path) -> None:
    hosts = [
        make_host("web01", f"file://{tmp_path}", address="192.0.2.11"),
        make_host("web02", f"file://{tmp_path}", address="192.0.2.12", layout="debian"),
    ]
    scene = Scene(tmp_path, hosts)

    async def run() -> None:
        await scene.start()
        list(scene.writer("rhel-nfs", identity="192.0.2.99").steps())  # a host nobody watches
        list(scene.writer("rhel-local", identity=None).steps())  # 127.0.0.1-...: whose?
        list(scene.writer("rhel-nfs", identity="192.0.2.12").steps())  # web02 is Debian: not its
        list(scene.writer("rhel-nfs", identity="192.0.2.11").steps())
        await scene.poll()
        warnings = [e for e in scene.events if e.kind == "dump_unattributed"]
        assert {w.data["problem"] for w in warnings} == {"unknown", "local-form"}
        assert all(w.level == "warning" for w in warnings)
        assert "192.0.2.99, which is no watched host's address" in next(
            w.message for w in warnings if w.data["problem"] == "unknown"
        )
        assert scene.watcher.state_of("web01") is DumpState.COMPLETE
        assert scene.watcher.state_of("web02") is DumpState.WAITING
        await scene.poll()
        assert len([e for e in scene.events if e.kind == "dump_unattributed"]) == 2  # once each
        await scene.watcher.close()

    asyncio.run(run())


def test_baseline_round_trip_and_coverage(tmp_path: Path) -> None:
    baseline = Baseline(names={"file:///x": frozenset({"a", "b"})}, taken_at=1.5)
    assert Baseline.from_dict(baseline.to_dict()) == baseline
    scene = Scene(tmp_path)
    from oob.errors import UsageError

    with pytest.raises(UsageError, match="does not cover"):
        scene.watcher.begin(baseline)


def test_options_are_checked() -> None:
    from oob.errors import UsageError

    with pytest.raises(UsageError, match="stall-after must be more than 0"):
        WatchOptions(stall_after=0)
    with pytest.raises(UsageError, match="has no dump.target"):
        DumpWatcher([make_host("x", "")])
    with pytest.raises(UsageError, match="x: dump target 'ftp://a/b'"):
        DumpWatcher([make_host("x", "ftp://a/b")])
