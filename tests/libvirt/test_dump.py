"""``oob dump``: the hypervisor writes the guest's memory into a new kdump-like directory,
never over anything, after a free-space check, with audit records; formats fall back by
libvirt's error code; the deadline aborts the job."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from oob.audit import AuditLog
from oob.drivers.libvirt import LibvirtDriver
from oob.errors import DumpTimeout
from oob.events import Event, discard
from oob.model import Host
from oob.runbook.hvdump import DumpRequest, run_dump
from tests.conftest import CliResult
from tests.libvirt.conftest import libvirt_error

DIR_NAME = re.compile(r"^vm1-\d{4}-\d\d-\d\d-\d\d:\d\d:\d\d$")


def test_cli_dump_writes_a_new_kdump_like_directory(
    oob: Callable[..., CliResult], inventory: Callable[..., Path], tmp_path: Path, audit_path: Path
) -> None:
    crash = tmp_path / "crash"
    crash.mkdir()
    result = oob("dump", "vm1", "-i", str(inventory(("vm1", "vm1"))), "--dir", str(crash), "-y", "--json")
    assert result.code == 0, result.stderr
    record = result.record("vm1")
    path = Path(record["path"])
    assert path.name == "vmcore" and path.parent.parent == crash and DIR_NAME.match(path.parent.name)
    # the test driver refuses memory-only (VIR_ERR_INVALID_ARG) and writes its stand-in
    assert record["format"] == "native" and record["bytes"] == path.stat().st_size > 0
    assert len(record["skipped_formats"]) == 2
    assert record["handoff"]["vmcore"] == str(path)
    events = [json.loads(line) for line in audit_path.read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds.count("dump.sending") == 1 and kinds.count("dump.written") == 1
    assert kinds.index("dump.sending") < kinds.index("dump.written")
    assert events[kinds.index("dump.written")]["path"] == str(path)


def test_cli_dump_refuses_without_enough_space(
    oob: Callable[..., CliResult], inventory: Callable[..., Path], tmp_path: Path, audit_path: Path
) -> None:
    crash = tmp_path / "crash"
    crash.mkdir()
    result = oob("dump", "huge", "-i", str(inventory(("huge", "huge"))), "--dir", str(crash), "-y")
    assert result.code == 7
    assert "not enough space" in result.stdout
    assert list(crash.iterdir()) == []
    assert not audit_path.exists() or "dump.sending" not in audit_path.read_text()


def test_cli_dump_asks_first(
    oob: Callable[..., CliResult], inventory: Callable[..., Path], tmp_path: Path
) -> None:
    result = oob(
        "dump", "vm1", "-i", str(inventory(("vm1", "vm1"))), "--dir", str(tmp_path), tty_input="no\n"
    )
    assert result.code == 7
    assert "pause and dump the memory of" in result.stderr
    assert list(tmp_path.glob("vm1-*")) == []


def test_never_writes_over_an_existing_dump(guest: Callable[..., Host], tmp_path: Path) -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    earlier = tmp_path / "vm1-2026-01-02-03:04:05"
    earlier.mkdir()
    (earlier / "vmcore").write_bytes(b"the earlier dump")
    audit = AuditLog(tmp_path / "audit.jsonl", command=["test"])
    [outcome] = run_dump(
        [guest()],
        DumpRequest(directory=str(tmp_path), assume_yes=True),
        confirm=lambda plans: True,
        emit=discard,
        audit=audit,
        now=lambda: at,
    )
    assert outcome.status == "refused" and "never writes over" in str(outcome.error)
    assert (earlier / "vmcore").read_bytes() == b"the earlier dump"


def test_a_guest_that_is_off_has_nothing_to_dump(guest: Callable[..., Host], tmp_path: Path) -> None:
    request = DumpRequest(directory=str(tmp_path), assume_yes=True)
    [off, unknown] = run_dump(
        [guest("down"), guest("nosuch")], request, confirm=lambda plans: True, emit=discard, audit=None
    )
    assert off.status == "refused" and "not running" in str(off.error)
    assert unknown.exit_code == 3 and "no guest" in str(unknown.error)
    assert list(tmp_path.glob("*-*")) == []


class FakeQemuDomain:
    """A QEMU guest as libvirt answers for it: kdump-zlib refused by this QEMU, ELF written."""

    def __init__(self, hold: threading.Event | None = None) -> None:
        self.calls: list[tuple[int, int]] = []
        self.hold = hold
        self.aborted = False

    def coreDumpWithFormat(self, path: str, fmt: int, flags: int) -> int:
        import libvirt

        self.calls.append((fmt, flags))
        if fmt == libvirt.VIR_DOMAIN_CORE_DUMP_FORMAT_KDUMP_ZLIB:
            raise libvirt_error(libvirt.VIR_ERR_OPERATION_UNSUPPORTED, "unsupported dumpformat 'kdump-zlib'")
        if self.hold is not None:
            self.hold.wait(30)
            raise libvirt_error(libvirt.VIR_ERR_OPERATION_ABORTED, "operation aborted")
        Path(path).write_bytes(b"\x7fELF")
        return 0

    def jobStats(self) -> dict[str, int]:
        return {"type": 2, "memory_total": 1000, "memory_processed": 250}

    def abortJob(self) -> int:
        self.aborted = True
        assert self.hold is not None
        self.hold.set()
        return 0


class FakeQemuConnection:
    def getType(self) -> str:
        return "QEMU"


def fake_driver(host: Host, domain: Any) -> LibvirtDriver:
    driver = LibvirtDriver(host)
    driver._conn, driver._dom = FakeQemuConnection(), domain
    return driver


def test_qemu_falls_back_to_elf_by_code_and_reports_progress(
    guest: Callable[..., Host], tmp_path: Path
) -> None:
    import libvirt

    domain = FakeQemuDomain()
    steps: list[Any] = []
    written = fake_driver(guest(), domain).dump_memory(
        str(tmp_path / "vmcore"), live=True, progress=steps.append, poll_s=0.01
    )
    assert written.format == "elf" and "VIR_ERR_OPERATION_UNSUPPORTED" in written.skipped[0]
    memory_only_live = libvirt.VIR_DUMP_MEMORY_ONLY | libvirt.VIR_DUMP_LIVE
    assert domain.calls == [
        (libvirt.VIR_DOMAIN_CORE_DUMP_FORMAT_KDUMP_ZLIB, memory_only_live),
        (libvirt.VIR_DOMAIN_CORE_DUMP_FORMAT_RAW, memory_only_live),
    ]  # a QEMU guest never gets the non-memory-only dump (a migration stream crash cannot read)


def test_the_deadline_aborts_the_job(guest: Callable[..., Host], tmp_path: Path) -> None:
    domain = FakeQemuDomain(hold=threading.Event())
    steps: list[Any] = []
    with pytest.raises(DumpTimeout, match="aborted"):
        fake_driver(guest(), domain).dump_memory(
            str(tmp_path / "vmcore"), live=False, progress=steps.append, deadline_s=0.3, poll_s=0.05
        )
    assert domain.aborted
    assert steps and steps[-1].percent == 25.0


def test_progress_events_reach_the_renderer(guest: Callable[..., Host], tmp_path: Path) -> None:
    from oob.drivers.factory import use_drivers

    seen: list[Event] = []

    class Slow(FakeQemuDomain):
        def coreDumpWithFormat(self, path: str, fmt: int, flags: int) -> int:
            import time

            time.sleep(0.2)
            return super().coreDumpWithFormat(path, fmt, flags)

        def isActive(self) -> int:
            return 1

        def info(self) -> list[int]:
            return [1, 65536, 65536, 1, 0]

    class Driver(LibvirtDriver):
        def open(self) -> None:
            self._conn, self._dom = FakeQemuConnection(), Slow()

    request = DumpRequest(directory=str(tmp_path), assume_yes=True, poll_s=0.05)
    with use_drivers(lambda host, method: Driver(host)):
        [outcome] = run_dump([guest()], request, confirm=lambda p: True, emit=seen.append, audit=None)
    assert outcome.status == "ok" and outcome.detail["format"] == "elf"
    kinds = [e.kind for e in seen]
    assert "vm_dump_started" in kinds and "vm_dump_progress" in kinds and kinds[-1] == "vm_dump_written"


def test_crash_hypervisor_dump_dumps_instead_of_the_nmi(
    oob: Callable[..., CliResult], inventory: Callable[..., Path], tmp_path: Path, audit_path: Path
) -> None:
    crash = tmp_path / "crash"
    crash.mkdir()
    inv = inventory(("vm1", "vm1"))
    result = oob(
        "crash", "vm1", "-i", str(inv), "-y", "--hypervisor-dump", "--dump-dir", str(crash), "--json"
    )
    assert result.code == 0, result.stderr
    assert result.record("vm1")["action"] == "dump"
    assert len(list(crash.glob("vm1-*/vmcore"))) == 1
    text = audit_path.read_text()
    assert "dump.written" in text and "nmi.sending" not in text


def test_a_dump_that_fails_leaves_no_empty_directory(
    oob: Callable[..., CliResult], inventory: Callable[..., Path], tmp_path: Path, audit_path: Path
) -> None:
    crash = tmp_path / "crash"
    crash.mkdir()
    # the test driver takes no VIR_DUMP_RESET: every format is refused by its code
    result = oob(
        "dump", "vm1", "-i", str(inventory(("vm1", "vm1"))), "--dir", str(crash), "--after", "reset", "-y"
    )
    assert result.code == 4
    assert "none of the dump formats" in result.stdout
    assert list(crash.iterdir()) == []
    assert "dump.failed" in audit_path.read_text()


def test_a_remote_hypervisor_writes_on_its_own_machine(guest: Callable[..., Host], tmp_path: Path) -> None:
    """qemu+ssh://: the file is named flat in an existing directory there; space unchecked, said."""
    from oob.drivers.factory import use_drivers
    from oob.runbook.hvdump import dump_path, plan_dump

    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert dump_path(guest(), "/var/crash", True, at) == "/var/crash/vm1-2026-01-02-03:04:05.vmcore"

    class Remote(LibvirtDriver):
        @property
        def hypervisor_host(self) -> str | None:
            return "root@kvm07"

    with use_drivers(lambda host, method: Remote(host)):
        plan = plan_dump(guest(), DumpRequest(directory="/nonexistent-here"), at)
        assert plan.remote == "root@kvm07" and plan.free is None
        assert plan.path == "/nonexistent-here/vm1-2026-01-02-03:04:05.vmcore"
    assert "on root@kvm07" in plan.describe(DumpRequest())
