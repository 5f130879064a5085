"""The test guest under a real libvirtd, through the python binding: running and armed, a
hypervisor-side memory-only dump oob recognises, and one NMI (module-scoped: one crash for
all the checks) ending in a complete RHEL-layout kdump dump that oob's watcher follows."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import libvirt
import pytest

from oob.dump.formats import HEAD_SIZE, TAIL_SIZE, Reader, detect_format, find_release
from oob.dump.layouts import Family, FileInfo, assess, parse_dir_name
from tests.vm.fixture import VmGuest
from tests.vm.guest import ARMED_LINE, CRASH_UP_LINE, FIRST_UP_LINE, REPO, SAVED_LINE, ensure_guest

# the session fixture's boot counts against the first test that takes it
pytestmark = pytest.mark.timeout(600)

ET_CORE = 4
EM_X86_64 = 62


def _reader(path: Path) -> Reader:
    def read(offset: int, size: int) -> bytes:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read(size)

    return read


def _domain(guest: VmGuest) -> tuple[libvirt.virConnect, libvirt.virDomain]:
    conn = libvirt.open(guest.uri)
    return conn, conn.lookupByName(guest.domain)


def test_domain_runs_with_kdump_armed(vm_guest: VmGuest) -> None:
    conn, dom = _domain(vm_guest)
    try:
        state, _reason = dom.state()
        assert state == libvirt.VIR_DOMAIN_RUNNING
        assert conn.getType() == "QEMU"
        assert "<domain type='qemu'" in dom.XMLDesc()  # TCG, not KVM
        armed = vm_guest.wait_armed()
        assert "unknown_nmi_panic=1" in armed
        assert f"kernel {ensure_guest().release}" in armed
    finally:
        conn.close()


def test_memory_only_hypervisor_dump_is_recognised(vm_guest: VmGuest) -> None:
    conn, dom = _domain(vm_guest)
    path = vm_guest.scratch_dir / "memory-only.kdump"
    try:
        dom.coreDumpWithFormat(
            str(path),
            libvirt.VIR_DOMAIN_CORE_DUMP_FORMAT_KDUMP_ZLIB,
            libvirt.VIR_DUMP_MEMORY_ONLY | libvirt.VIR_DUMP_LIVE,
        )
        assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    finally:
        conn.close()
    # QEMU's kdump-zlib is makedumpfile's flattened stream of the kdump-compressed dump (the
    # reassembled kdump-raw-* formats came with QEMU 8.2; Debian 12 has 7.2)
    read = _reader(path)
    fmt = detect_format(read(0, HEAD_SIZE), read(path.stat().st_size - TAIL_SIZE, TAIL_SIZE))
    assert (fmt.kind, fmt.inner, fmt.compression) == ("flattened", "kdump-compressed", "zlib")
    assert fmt.end_marker is True and not fmt.truncated
    # the guest handed its VMCOREINFO to QEMU (vmcoreinfo device + qemu_fw_cfg)
    release = find_release(_reader(path))
    assert release is not None and release.release == ensure_guest().release
    path.unlink()


@dataclass(frozen=True)
class NmiOutcome:
    before: set[str]
    dump: Path
    #: the serial console from just before the NMI until the guest was armed again
    serial: str
    watch: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def nmi_outcome(vm_guest: VmGuest) -> NmiOutcome:
    """One NMI through libvirt, with oob's own watcher following the dump as it is written
    on the file:// target; returns once the guest is back with kdump armed."""
    before = vm_guest.dump_dirs()
    mark = vm_guest.serial_mark()
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat(timespec="seconds")
    conn, dom = _domain(vm_guest)
    try:
        dom.injectNMI(0)
    finally:
        conn.close()
    argv = [sys.executable, "-m", "oob", "watch", "guest", "--target", vm_guest.dump_target, "--layout", "rhel",
            "--address", "127.0.0.1", "--since", since, "--timeout", "4m", "--interval", "0.2", "--json"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "OOB_INVENTORY"}
    watch = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
        check=False,
    )
    dump = vm_guest.wait_dump(before=before, since=mark)
    vm_guest.wait_saved(since=mark)
    vm_guest.ensure_armed()
    return NmiOutcome(before, dump, vm_guest.serial_text()[mark:], watch)


def test_one_nmi_gives_one_panic_one_dump_and_the_guest_back_armed(
    vm_guest: VmGuest, nmi_outcome: NmiOutcome
) -> None:
    assert vm_guest.dump_dirs() - nmi_outcome.before == {nmi_outcome.dump.name}
    serial = nmi_outcome.serial
    assert serial.count(CRASH_UP_LINE) == 1
    assert serial.count(FIRST_UP_LINE) == 1  # rebooted once, as RHEL's kdump does
    assert serial.index(CRASH_UP_LINE) < serial.index(FIRST_UP_LINE) < serial.index(ARMED_LINE)


def test_the_dump_is_complete_in_rhel_local_layout(nmi_outcome: NmiOutcome) -> None:
    dump = nmi_outcome.dump
    dirname = parse_dir_name(dump.name)
    assert dirname is not None and dirname.family is Family.RHEL and dirname.is_local_form
    files = {p.name: FileInfo(p.name, p.stat().st_size) for p in dump.iterdir()}
    assert set(files) == {"vmcore", "vmcore-dmesg.txt", "kexec-dmesg.log"}
    verdict = assess(dirname, files)
    assert verdict.status == "complete", verdict.reason
    assert verdict.vmcore == ("vmcore",) and verdict.dmesg == "vmcore-dmesg.txt"


def test_the_kernel_log_beside_it_shows_the_unknown_nmi_panic(nmi_outcome: NmiOutcome) -> None:
    kernel_log = (nmi_outcome.dump / "vmcore-dmesg.txt").read_text(errors="replace")
    assert "Uhhuh. NMI received for unknown reason" in kernel_log
    assert "Kernel panic - not syncing: NMI: Not continuing" in kernel_log


def test_the_vmcore_is_the_crashed_kernels_elf_core(nmi_outcome: NmiOutcome) -> None:
    vmcore = nmi_outcome.dump / "vmcore"
    head = _reader(vmcore)(0, HEAD_SIZE)
    e_type, e_machine = struct.unpack_from("<HH", head, 16)
    assert head[4:6] == b"\x02\x01" and (e_type, e_machine) == (ET_CORE, EM_X86_64)  # ELF64 LE
    fmt = detect_format(head)
    assert (fmt.kind, fmt.producer, fmt.marked_incomplete) == ("elf", "kdump", False)
    release = find_release(_reader(vmcore))
    assert release is not None and release.release == ensure_guest().release


def test_oob_watch_follows_it_to_complete(nmi_outcome: NmiOutcome) -> None:
    watch = nmi_outcome.watch
    assert watch.returncode == 0, watch.stderr
    final = [json.loads(line) for line in watch.stdout.splitlines() if line.strip()][-1]
    assert (final["state"], final["directory"], final["vmcore"]) == (
        "complete",
        nmi_outcome.dump.name,
        "vmcore",
    )
    assert final["format"]["kind"] == "elf"
    assert any("Kernel panic - not syncing: NMI: Not continuing" in line for line in final["panic"])


def test_the_serial_console_shows_the_crash_kernel_and_the_panic(nmi_outcome: NmiOutcome) -> None:
    serial = nmi_outcome.serial
    crash_up = next(line for line in serial.splitlines() if CRASH_UP_LINE in line)
    assert "elfcorehdr=" in crash_up
    # relayed by the crash kernel from the crashed kernel's log (see tests/vm/guest.py)
    assert "crashed kernel said: " in serial and "Kernel panic - not syncing: NMI: Not continuing" in serial
    saved = next(line for line in serial.splitlines() if SAVED_LINE in line)
    assert nmi_outcome.dump.name in saved and saved.endswith(", ok)")
