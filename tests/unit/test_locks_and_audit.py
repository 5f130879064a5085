"""Per-host locks and the audit log, on real files."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from oob.audit import AuditLog, TornRecord
from oob.errors import AuditLogError, SafetyRefusal
from oob.locks import host_lock


def test_lock_names_its_holder_when_refusing(tmp_path: Path) -> None:
    with host_lock(tmp_path, "web01"):
        with pytest.raises(SafetyRefusal) as refused:
            with host_lock(tmp_path, "web01"):
                pass
    message = refused.value.message
    assert f"(pid {os.getpid()})" in message and "since 20" in message and "@" in message


def test_stale_holder_record_is_taken_over_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "web01.lock").write_text(
        json.dumps(
            {"pid": 999999999, "user": "alice", "machine": "box", "since": "2026-01-01T00:00:00+00:00"}
        )
    )
    warnings: list[tuple[str, str]] = []
    with host_lock(tmp_path, "web01", on_stale=lambda host, who: warnings.append((host, who))):
        pass
    assert warnings == [("web01", "alice@box (pid 999999999) since 2026-01-01T00:00:00+00:00")]
    assert (tmp_path / "web01.lock").read_text() == ""  # released cleanly


def test_audit_appends_and_never_rewrites(tmp_path: Path) -> None:
    path = tmp_path / "state" / "audit.jsonl"
    first = AuditLog(path, command=["oob", "nmi", "web01", "--yes"])
    first.record("nmi.sending", "web01", bmc="https://192.0.2.1", via="redfish")
    second = AuditLog(path)
    second.record("nmi.sent", "web01", status=204)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["event"] for r in records] == ["nmi.sending", "nmi.sent"]
    assert records[0]["command"] == "oob nmi web01 --yes"
    assert "@" in records[0]["operator"]
    assert records[0]["run"] != records[1]["run"]
    assert (path.stat().st_mode & 0o077) == 0
    assert second.recent(("nmi.sending", "nmi.sent"), 60, host="web01")["event"] == "nmi.sent"
    assert second.recent(("nmi.sent",), 60, host="web02") is None
    # keyed on the BMC too: another inventory's name for the same machine
    assert second.recent(("nmi.sending",), 60, host="other", bmc="https://192.0.2.1")["host"] == "web01"


def test_a_symlinked_audit_log_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    from oob.errors import AuditLogError

    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "state").mkdir(mode=0o700)
    path = tmp_path / "state" / "audit.jsonl"
    path.symlink_to(victim)
    log = AuditLog(path)
    with pytest.raises(AuditLogError, match="symlink"):
        log.record("nmi.sending", "web01")
    with pytest.raises(AuditLogError, match="symlink"):
        log.recent(("nmi.sending",), 60, host="web01")
    assert victim.read_text() == "precious\n"


def test_a_symlinked_lock_file_is_refused_and_its_target_not_truncated(tmp_path: Path) -> None:
    from oob.errors import AuditLogError

    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    locks = tmp_path / "locks"
    locks.mkdir(mode=0o700)
    (locks / "web01.lock").symlink_to(victim)
    with pytest.raises(AuditLogError, match="symlink"):
        with host_lock(locks, "web01"):
            pass
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("mode", [0o777, 0o757])
def test_a_lock_directory_writable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    from oob.errors import AuditLogError

    locks = tmp_path / "locks"
    locks.mkdir()
    locks.chmod(mode)
    with pytest.raises(AuditLogError, match="writable by other users"):
        with host_lock(locks, "web01"):
            pass
    link = tmp_path / "linked"
    link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    with pytest.raises(AuditLogError, match="symlink"):
        with host_lock(link, "web01"):
            pass


def test_the_bmc_address_is_locked_too(tmp_path: Path) -> None:
    with host_lock(tmp_path, "web01", bmc="https://192.0.2.1"):
        with pytest.raises(SafetyRefusal, match="its BMC https://192.0.2.1"):
            with host_lock(tmp_path, "web01-alias", bmc="https://192.0.2.1"):
                pass


@pytest.mark.parametrize(
    "tail", [b'{"ts": "2099-01-01T00:00:00+00:00", "event": "nmi.sen', b"\x00\x00garbage\n"]
)
def test_a_torn_record_near_the_end_is_reported_never_skipped(tmp_path: Path, tail: bytes) -> None:
    from oob.audit import TornRecord

    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.record("nmi.sent", "web02", bmc="https://192.0.2.2")
    with open(path, "ab") as handle:
        handle.write(tail)
    size_before = path.stat().st_size
    found = log.recent(("nmi.sending", "nmi.sent"), 900, host="web01", bmc="https://192.0.2.1")
    assert isinstance(found, TornRecord) and found.offset < size_before
    # the guard refuses on it, saying how to look; --force goes ahead
    from oob.model import BmcConfig, Host
    from oob.runbook.guard import repeat_refusal

    host = Host(name="web01", bmc=BmcConfig(address="https://192.0.2.1"))
    refusal = repeat_refusal(log, host, force=False, window_s=900)
    assert refusal is not None and refusal.exit_code == 7 and "tail -c +" in refusal.message
    assert repeat_refusal(log, host, force=True, window_s=900) is None


def test_a_short_write_leaves_no_torn_record(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "audit.jsonl"
    AuditLog(path).record("old", "web01")
    size = path.stat().st_size
    script = (
        "import resource, sys; from pathlib import Path; from oob.audit import AuditLog\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({size + 40}, {size + 40}))\n"
        f"AuditLog(Path({str(path)!r})).record('nmi.sending', 'web01', bmc='https://192.0.2.1')\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert run.returncode != 0 and "AuditLogError" in run.stderr and "not written" in run.stderr
    assert path.stat().st_size == size  # the 40 bytes that did fit were cut off again
    assert [json.loads(line)["event"] for line in path.read_text().splitlines()] == ["old"]


def test_records_from_many_threads_share_fsyncs_and_all_arrive_whole(tmp_path, monkeypatch):
    import threading

    import oob.audit as audit_module

    log = AuditLog(tmp_path / "audit.jsonl")
    log.record("run.started")  # the file exists: no directory fsync below
    calls = []
    real_fsync = audit_module.os.fsync

    def slow_fsync(fd):
        calls.append(fd)
        time.sleep(0.01)  # a disk's flush: the other threads queue up meanwhile
        real_fsync(fd)

    monkeypatch.setattr(audit_module.os, "fsync", slow_fsync)
    start = threading.Barrier(100)

    def one(index):
        start.wait()
        log.record("nmi.sending", f"host{index:03d}", via="redfish")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    hosts = sorted(json.loads(line).get("host", "") for line in lines[1:])
    assert hosts == [f"host{i:03d}" for i in range(100)]
    assert len(calls) < 50  # batched: one fsync per write, many records per write


def test_a_batch_that_cannot_be_written_fails_every_record_in_it(tmp_path, monkeypatch):
    import threading

    import oob.audit as audit_module

    log = AuditLog(tmp_path / "audit.jsonl")
    log.record("run.started")
    before = (tmp_path / "audit.jsonl").read_bytes()

    def full_disk(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audit_module, "_write_all", full_disk)
    errors = []

    def one(index):
        try:
            log.record("nmi.sending", f"host{index}")
        except AuditLogError as exc:
            errors.append(exc.for_host(f"host{index}"))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 20
    assert sorted(e.host for e in errors) == sorted(f"host{i}" for i in range(20))  # each its own copy
    assert (tmp_path / "audit.jsonl").read_bytes() == before


def test_recent_parses_each_line_once_and_sees_what_others_append(tmp_path, monkeypatch):
    import oob.audit as audit_module

    path = tmp_path / "audit.jsonl"
    writer = AuditLog(path)
    for index in range(300):
        writer.record("nmi.sent", f"host{index:03d}", machine=f"bmc{index:03d}")
    reader = AuditLog(path)
    parsed = []
    real_loads = audit_module.json.loads
    monkeypatch.setattr(audit_module.json, "loads", lambda data: parsed.append(1) or real_loads(data))

    for index in range(300):  # a run over 300 hosts, each looked up (twice in a real run)
        found = reader.recent(("nmi.sent",), 900, host=f"host{index:03d}")
        assert isinstance(found, dict) and found["host"] == f"host{index:03d}"
    assert len(parsed) == 300  # not 300 x 300

    writer.record("nmi.sending", "late")  # another process (another AuditLog) appends
    assert reader.recent(("nmi.sending",), 900, host="late")["host"] == "late"
    with path.open("ab") as file:  # and a torn record at the end is seen at once
        file.write(b'{"ts": "2026-')
    assert isinstance(reader.recent(("nmi.sending",), 900, host="nobody"), TornRecord)


def test_recent_reads_afresh_a_log_that_was_replaced(tmp_path):
    path = tmp_path / "audit.jsonl"
    first = AuditLog(path)
    for index in range(50):
        first.record("nmi.sent", f"old{index}")
    reader = AuditLog(path)
    assert reader.recent(("nmi.sent",), 900, host="old3") is not None
    path.unlink()  # rotated away; a new log in its place, longer than what was read of the old
    replacement = AuditLog(path)
    for index in range(60):
        replacement.record("nmi.sent", "new", padding="x" * index)
    assert reader.recent(("nmi.sent",), 900, host="old3") is None
    assert reader.recent(("nmi.sent",), 900, host="new")["host"] == "new"


def test_a_writer_that_fails_unexpectedly_never_lets_its_batch_count_as_written(tmp_path, monkeypatch):
    import threading

    log = AuditLog(tmp_path / "audit.jsonl")
    log.record("run.started")
    blocking = threading.Event()
    release = threading.Event()
    real_append = AuditLog._append

    def append(self, line):
        if b'"blocker"' in line:
            blocking.set()
            release.wait(5)  # two records queue up behind this write meanwhile
        elif b'"host-a"' in line and b'"host-b"' in line:
            raise RuntimeError("a bug in the writer")  # their shared batch
        return real_append(self, line)

    monkeypatch.setattr(AuditLog, "_append", append)
    outcomes: dict[str, object] = {}

    def write(host):
        try:
            log.record("nmi.sending", host)
            outcomes[host] = "written"
        except Exception as exc:  # noqa: BLE001 - the test records what each caller saw
            outcomes[host] = exc

    threads = [threading.Thread(target=write, args=(host,)) for host in ("blocker", "host-a", "host-b")]
    threads[0].start()
    assert blocking.wait(5)
    threads[1].start()
    threads[2].start()
    time.sleep(0.3)  # both queued behind the blocked write
    release.set()
    for thread in threads:
        thread.join(5)
    assert outcomes["blocker"] == "written"
    seen = sorted(type(outcomes[host]).__name__ for host in ("host-a", "host-b"))
    assert seen == ["AuditLogError", "RuntimeError"]  # the writer's bug, and for the other: not written
    text = (tmp_path / "audit.jsonl").read_text()
    assert '"host-a"' not in text and '"host-b"' not in text


def test_recent_forgets_a_log_that_was_removed(tmp_path):
    path = tmp_path / "audit.jsonl"
    AuditLog(path).record("nmi.sent", "gone")
    reader = AuditLog(path)
    assert reader.recent(("nmi.sent",), 900, host="gone") is not None
    path.unlink()
    assert reader.recent(("nmi.sent",), 900, host="gone") is None


def test_lock_files_of_different_machines_never_coincide(tmp_path: Path) -> None:
    long_guest = "qemu+ssh://root@kvm07.example.com/system?keyfile=/root/.ssh/id_kvm#" + "g" * 255
    with (
        host_lock(tmp_path, "vm01", bmc="qemu:///system#a/b"),
        host_lock(tmp_path, "vm02", bmc="qemu:///system#a_b"),
    ):
        with host_lock(tmp_path, "vm03", bmc=long_guest):  # a name past 255 bytes still locks
            names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 6 and all(len(n) < 255 for n in names)
    assert "vm01.lock" in names


def test_a_record_being_written_is_never_read_as_a_torn_one(tmp_path, monkeypatch):
    """A reader (this process or another) that looks while a writer's batch is half on disk
    waits for the whole batch: the half it would see is no torn record (found at 1,000
    hosts: a large batch reaches the file a page at a time)."""
    import threading

    import oob.audit as audit_module

    path = tmp_path / "audit.jsonl"
    writer = AuditLog(path)
    writer.record("run.started")
    half_written = threading.Event()
    real_write_all = audit_module._write_all

    def write_in_two_halves(fd, data):
        real_write_all(fd, data[: len(data) // 2])
        half_written.set()
        time.sleep(0.3)  # the reader looks now
        real_write_all(fd, data[len(data) // 2 :])

    monkeypatch.setattr(audit_module, "_write_all", write_in_two_halves)
    thread = threading.Thread(
        target=writer.record, args=("nmi.sent", "host1"), kwargs={"padding": "x" * 9000}
    )
    thread.start()
    assert half_written.wait(5)
    assert path.read_bytes().count(b"\n") == 1  # the half is on disk, unfinished
    found = AuditLog(path).recent(("nmi.sent",), 900, host="host1")
    thread.join()
    assert isinstance(found, dict) and found["host"] == "host1"


def test_recent_finds_what_a_scan_from_the_end_finds(tmp_path):
    """The indexed lookup against the plain scan it replaces, on logs with torn lines, lines
    dated out of order, hosts, machines and records that name only a BMC."""
    import random
    from datetime import UTC, datetime

    def reference(lines, events, window_s, now, host, machine, bmc):
        for offset, entry, _text in reversed(lines):
            if entry is None:
                return ("torn", offset)
            if now - datetime.fromisoformat(entry["ts"]).timestamp() > window_s:
                return None
            if entry["event"] in events and (
                (host is not None and entry.get("host") == host)
                or (machine is not None and entry.get("machine") == machine)
                or (bmc is not None and "machine" not in entry and entry.get("bmc") == bmc)
            ):
                return ("record", entry["n"])
        return None

    rng = random.Random(12)
    for case in range(40):
        path = tmp_path / f"audit{case}.jsonl"
        now = time.time()
        lines, data, offset = [], b"", 0
        for n in range(rng.randrange(1, 120)):
            if rng.random() < 0.03:
                raw, entry = b'{"ts": "2026-11-30T0', None
            else:
                age = rng.choice([rng.uniform(0, 100), rng.uniform(800, 1000), rng.uniform(0, 2000)])
                entry = {"ts": datetime.fromtimestamp(now - age, UTC).isoformat(), "n": n}
                entry["event"] = rng.choice(["nmi.sending", "nmi.sent", "power.sent"])
                if rng.random() < 0.8:
                    entry["host"] = f"h{rng.randrange(5)}"
                if rng.random() < 0.6:
                    entry["machine"] = f"m{rng.randrange(5)}"
                if rng.random() < 0.6:
                    entry["bmc"] = f"m{rng.randrange(5)}"
                raw = json.dumps(entry).encode()
            lines.append((offset, entry, raw.decode()))
            data += raw + b"\n"
            offset += len(raw) + 1
        path.write_bytes(data)
        log = AuditLog(path)
        for _ in range(30):
            events = frozenset(rng.sample(["nmi.sending", "nmi.sent", "power.sent"], rng.randrange(1, 3)))
            host, machine, bmc = (rng.choice([None, f"{p}{rng.randrange(5)}"]) for p in ("h", "m", "m"))
            window = rng.choice([50.0, 900.0, 5000.0])
            found = log.recent(events, window, host=host, machine=machine, bmc=bmc)
            expected = reference(lines, events, window, time.time(), host, machine, bmc)
            if isinstance(found, TornRecord):
                assert expected == ("torn", found.offset)
            else:
                assert (found and ("record", found["n"])) == expected


def test_a_log_another_process_creates_first_is_appended_to(tmp_path, monkeypatch):
    """Two processes write the first record at once (an oob run's workers): the one whose
    exclusive create loses appends to the file the other made (it had been refused: File
    exists)."""
    import oob.audit as audit_module

    path = tmp_path / "audit.jsonl"
    AuditLog(path).record("run.started")  # the other process's record: the file exists
    real_open = audit_module.os.open
    calls = []

    def late(file, flags, *args):
        calls.append(flags)
        if len(calls) == 1:  # this process looked before the other created it
            raise FileNotFoundError(2, "No such file or directory")
        return real_open(file, flags, *args)

    monkeypatch.setattr(audit_module.os, "open", late)
    AuditLog(path).record("nmi.confirmed", hosts=["h1"])
    assert [json.loads(line)["event"] for line in path.read_text().splitlines()] == [
        "run.started",
        "nmi.confirmed",
    ]
    assert calls[1] & os.O_EXCL  # it did try to create it, and lost
