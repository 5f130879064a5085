"""``oob dump`` at its deadline or on Ctrl-C when libvirt will not abort the dump job, as
libvirt refuses for every memory-only QEMU dump (VIR_ERR_OPERATION_INVALID, "cannot abort
memory-only dump": libvirt 9.0 and QEMU 7.2, the real guest of tests/vm): oob never says
"aborted" then, and a dump that ends meanwhile is a written dump."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from oob.errors import DumpTargetError, DumpTimeout
from oob.model import Host
from tests.libvirt.conftest import libvirt_error
from tests.libvirt.test_dump import fake_driver


class MemoryOnlyQemuDomain:
    """Writes its dump until ``finish`` is set; refuses to abort it, as libvirt does (and
    with ``ends_meanwhile``, the dump ends just after)."""

    def __init__(self, ends_meanwhile: bool = False) -> None:
        self.finish = threading.Event()
        self.abort_asked = threading.Event()
        self.ends_meanwhile = ends_meanwhile

    def coreDumpWithFormat(self, path: str, fmt: int, flags: int) -> int:
        Path(path).write_bytes(b"KDUMP   ")
        self.finish.wait(30)
        return 0

    def jobStats(self) -> dict[str, int]:
        return {"type": 2, "memory_total": 1000, "memory_processed": 500}

    def abortJob(self) -> int:
        import libvirt

        self.abort_asked.set()
        if self.ends_meanwhile:
            self.finish.set()
        raise libvirt_error(
            libvirt.VIR_ERR_OPERATION_INVALID,
            "Requested operation is not valid: cannot abort memory-only dump",
        )


def test_at_the_deadline_a_dump_libvirt_will_not_abort_is_said_to_go_on(
    guest: Callable[..., Host], tmp_path: Path
) -> None:
    domain = MemoryOnlyQemuDomain()
    driver = fake_driver(guest(timeout=0.2), domain)
    try:
        with pytest.raises(DumpTimeout) as raised:
            driver.dump_memory(str(tmp_path / "vmcore"), live=False, deadline_s=0.2, poll_s=0.05)
    finally:
        domain.finish.set()
    message = raised.value.message
    assert domain.abort_asked.is_set() and "aborted" not in message
    assert "VIR_ERR_OPERATION_INVALID" in message and "cannot abort memory-only dump" in message
    assert "the hypervisor goes on writing the file; the guest stays paused until it is done" in message


def test_a_dump_that_ends_after_the_refused_abort_is_written(
    guest: Callable[..., Host], tmp_path: Path
) -> None:
    domain = MemoryOnlyQemuDomain(ends_meanwhile=True)
    driver = fake_driver(guest(timeout=5), domain)
    written = driver.dump_memory(str(tmp_path / "vmcore"), live=True, deadline_s=0.2, poll_s=0.05)
    assert written.format == "kdump-zlib" and domain.abort_asked.is_set()


def test_ctrl_c_with_a_dump_libvirt_will_not_abort_says_so(
    guest: Callable[..., Host], tmp_path: Path
) -> None:
    domain = MemoryOnlyQemuDomain()
    cancel = threading.Event()
    cancel.set()
    driver = fake_driver(guest(timeout=0.2), domain)
    try:
        with pytest.raises(DumpTargetError) as raised:
            driver.dump_memory(str(tmp_path / "vmcore"), live=True, poll_s=0.05, cancel=cancel)
    finally:
        domain.finish.set()
    message = raised.value.message
    assert message.startswith("interrupted: libvirt could not abort the dump (VIR_ERR_OPERATION_INVALID")
    assert message.endswith("the hypervisor goes on writing the file")  # --live: not paused
