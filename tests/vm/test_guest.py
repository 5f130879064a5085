"""The test guest under a real libvirtd: running and armed, a hypervisor-side memory-only
dump oob recognises, and one NMI ending in a complete RHEL-layout kdump dump."""

from __future__ import annotations

import struct
from pathlib import Path

import libvirt
import pytest

from oob.dump.formats import HEAD_SIZE, TAIL_SIZE, Reader, detect_format, find_release
from oob.dump.layouts import Family, FileInfo, assess, parse_dir_name
from tests.vm.fixture import VmGuest
from tests.vm.guest import ARMED_LINE, ensure_guest

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
    # libvirt 9.0 hands QEMU 7.2 a pipe, so QEMU writes makedumpfile's flattened stream of
    # the kdump-compressed dump (libvirt >= 10.0 with QEMU >= 8.2 can ask for it reassembled)
    read = _reader(path)
    fmt = detect_format(read(0, HEAD_SIZE), read(path.stat().st_size - TAIL_SIZE, TAIL_SIZE))
    assert (fmt.kind, fmt.inner, fmt.compression) == ("flattened", "kdump-compressed", "zlib")
    assert fmt.end_marker is True and not fmt.truncated
    # the guest handed its VMCOREINFO to QEMU (vmcoreinfo device + qemu_fw_cfg)
    release = find_release(_reader(path))
    assert release is not None and release.release == ensure_guest().release
    path.unlink()


def test_one_nmi_ends_in_a_complete_rhel_dump(vm_guest: VmGuest) -> None:
    before = vm_guest.dump_dirs()
    mark = vm_guest.serial_mark()
    conn, dom = _domain(vm_guest)
    try:
        dom.injectNMI(0)
    finally:
        conn.close()

    dump = vm_guest.wait_dump(before=before, since=mark)
    dirname = parse_dir_name(dump.name)
    assert dirname is not None and dirname.family is Family.RHEL and dirname.is_local_form
    files = {p.name: FileInfo(p.name, p.stat().st_size) for p in dump.iterdir()}
    verdict = assess(dirname, files)
    assert verdict.status == "complete", verdict.reason
    assert verdict.vmcore == ("vmcore",) and verdict.dmesg == "vmcore-dmesg.txt"

    kernel_log = (dump / "vmcore-dmesg.txt").read_text(errors="replace")
    assert "Uhhuh. NMI received for unknown reason" in kernel_log
    assert "Kernel panic - not syncing: NMI: Not continuing" in kernel_log

    vmcore = dump / "vmcore"
    head = _reader(vmcore)(0, HEAD_SIZE)
    e_type, e_machine = struct.unpack_from("<HH", head, 16)
    assert head[4:6] == b"\x02\x01" and (e_type, e_machine) == (ET_CORE, EM_X86_64)  # ELF64 LE
    fmt = detect_format(head)
    assert (fmt.kind, fmt.producer, fmt.marked_incomplete) == ("elf", "kdump", False)
    release = find_release(_reader(vmcore))
    assert release is not None and release.release == ensure_guest().release

    # the serial console: the crash kernel booted on the panic and relayed it, then the
    # guest rebooted and armed kdump again (ready for the next test)
    saved = vm_guest.wait_saved(since=mark)
    assert dump.name in saved and saved.endswith(", ok)")
    serial = vm_guest.serial_text()[mark:]
    assert "elfcorehdr=" in serial
    assert "crashed kernel said: " in serial and "Kernel panic - not syncing: NMI: Not continuing" in serial
    vm_guest.ensure_armed()
    assert vm_guest.serial_text()[mark:].count("first kernel up") == 1  # rebooted once
    # one NMI, one panic, one dump
    assert vm_guest.dump_dirs() - before == {dump.name}
    assert vm_guest.serial_text()[mark:].count("crash kernel up") == 1
    assert ARMED_LINE in vm_guest.serial_text()[mark:]
