"""The kernel release a dump names, and the hypervisor dumps: real vmcore heads (Debian 6.1,
makedumpfile -l -d 31) and small ELF, kdump, flattened and wrapped images built here with
the layouts of the kernel, QEMU, libxc and VMware (sources in docs/ANALYSIS-HANDOFF.md)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
from pathlib import Path

import pytest

from mocks.kdump import DumpSpec, image_stream, kdump_header
from oob.dump.formats import (
    HEAD_SIZE,
    bytes_reader,
    detect_format,
    find_release,
    kdump_vmcoreinfo,
    parse_notes,
    read_elf,
    valid_release,
    vmcoreinfo_release,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "kernel-logs"
CASES = ("hard", "oops", "rcustall", "softlockup", "sysrq")
RELEASE = "5.14.0-427.13.1.el9_4.x86_64"


def note(name: bytes, note_type: int, desc: bytes, order: str = "<") -> bytes:
    def pad(data: bytes) -> bytes:
        return data + b"\0" * (-len(data) % 4)

    return struct.pack(f"{order}III", len(name) + 1, len(desc), note_type) + pad(name + b"\0") + pad(desc)


def vmcoreinfo(release: str) -> bytes:
    return f"OSRELEASE={release}\nPAGESIZE=4096\nSYMBOL(init_uts_ns)=ffffffff82a13000\n".encode()


def elf64(notes: bytes, *, order: str = "<", flags: int = 0) -> bytes:
    """An ELF64 core file: header, one PT_NOTE and one PT_LOAD, the notes at 0x1000."""
    ident = b"\x7fELF" + bytes([2, 2 if order == ">" else 1, 1, 0]) + b"\0" * 8
    header = ident + struct.pack(f"{order}HHIQQQIHHHHHH", 4, 62, 1, 0, 64, 0, flags, 64, 56, 2, 0, 0, 0)
    pt_note = struct.pack(f"{order}IIQQQQQQ", 4, 0, 0x1000, 0, 0, len(notes), len(notes), 0)
    pt_load = struct.pack(f"{order}IIQQQQQQ", 1, 7, 0x2000, 0xFFFFFFFF81000000, 0, 0x1000, 0x1000, 0x1000)
    return (header + pt_note + pt_load).ljust(0x1000, b"\0") + notes.ljust(0x1000, b"\0") + b"\0" * 0x1000


def elf32(notes: bytes, *, order: str = ">") -> bytes:
    ident = b"\x7fELF" + bytes([1, 2 if order == ">" else 1, 1, 0]) + b"\0" * 8
    header = ident + struct.pack(f"{order}HHIIIIIHHHHHH", 4, 20, 1, 0, 52, 0, 0, 52, 32, 1, 0, 0, 0)
    pt_note = struct.pack(f"{order}IIIIIIII", 4, 0x200, 0, 0, len(notes), len(notes), 0, 0)
    return (header + pt_note).ljust(0x200, b"\0") + notes


def prstatus() -> bytes:
    return note(b"CORE", 1, b"\0" * 336)


def xen_dump_core(nr_vcpus: int = 2) -> bytes:
    """libxc's xc_core layout: ELF header, section headers, .shstrtab, .note.Xen, no PT_*."""
    names = b"\0.shstrtab\0.note.Xen\0.xen_prstatus\0.xen_pages\0.xen_p2m\0"
    xen_notes = (
        note(b"Xen", 0x2000000, b"")
        + note(b"Xen", 0x2000001, struct.pack("<QQQQ", 0xF00FEBED, nr_vcpus, 4, 4096))
        + note(b"Xen", 0x2000003, struct.pack("<Q", 1))
    )
    sections = [
        (0, 0, 0, 0),
        (1, 3, 0, 0),
        (11, 7, 0, len(xen_notes)),
        (21, 1, 0, 64),
        (35, 1, 0, 4096),
        (46, 1, 0, 64),
    ]
    shoff, shnum = 64, len(sections)
    strtab_off = shoff + 64 * shnum
    notes_off = strtab_off + len(names)
    offsets = [0, strtab_off, notes_off, 0x1000, 0x2000, 0x3000]
    sizes = [0, len(names), len(xen_notes), 64, 4096, 64]
    table = b"".join(
        struct.pack(
            "<IIQQQQIIQQ", name, kind, 0, 0, offsets[i] if kind else 0, sizes[i] if kind else 0, 0, 0, 8, 0
        )
        for i, (name, kind, _, _) in enumerate(sections)
    )
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    header = ident + struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64, shnum, 1)
    return (header + table + names + xen_notes).ljust(0x4000, b"\0")


def flattened(records: list[tuple[int, bytes]], *, end: bool = True) -> bytes:
    out = (b"makedumpfile\0\0\0\0" + struct.pack(">qq", 1, 1)).ljust(0x1000, b"\0")
    for offset, data in records:
        out += struct.pack(">qq", offset, len(data)) + data
    return out + (b"\xff" * 16 if end else b"")


def qemu_kdump(release: str | None) -> bytes:
    """QEMU's dump-guest-memory --format kdump-zlib: uts release left empty by QEMU, the
    guest's VMCOREINFO (when it had the device) and the per-CPU CORE + QEMU notes in the
    sub-header's areas."""
    header = bytearray(kdump_header(DumpSpec(kernel=""), status=0x1))
    notes = prstatus() + note(b"QEMU", 0, b"\0" * 432) + prstatus() + note(b"QEMU", 0, b"\0" * 432)
    info = vmcoreinfo(release) if release else b""
    note_offset = 0x2000
    info_offset = note_offset + len(notes)
    struct.pack_into(
        "<qQqQ", header, 0x1000 + 32, info_offset if info else 0, len(info), note_offset, len(notes)
    )
    return bytes(header) + notes + info + b"\0" * 4096


@pytest.mark.parametrize("case", CASES)
def test_release_of_every_real_vmcore_head(case: str) -> None:
    head = (DATA / case / "vmcore.head").read_bytes()
    assert find_release(bytes_reader(head)) == ("6.1.0-50-amd64", "kdump-compressed header (utsname release)")
    # the sub-header's VMCOREINFO copy (what QEMU's kdump files rely on) says the same
    assert vmcoreinfo_release(kdump_vmcoreinfo(bytes_reader(head))) == "6.1.0-50-amd64"
    fmt = detect_format(head[:HEAD_SIZE])
    assert (fmt.kind, fmt.compression, fmt.producer) == ("kdump-compressed", "lzo", None)


def test_elf_vmcoreinfo_note_little_and_big_endian() -> None:
    notes = prstatus() + prstatus() + note(b"VMCOREINFO", 0, vmcoreinfo(RELEASE))
    data = elf64(notes)
    assert find_release(bytes_reader(data)) == (RELEASE, "ELF VMCOREINFO note (OSRELEASE)")
    fmt = detect_format(data[:HEAD_SIZE])
    assert (fmt.kind, fmt.producer) == ("elf", "kdump")
    big = elf32(note(b"VMCOREINFO", 0, vmcoreinfo("6.8.0-45-generic"), ">"), order=">")
    assert find_release(bytes_reader(big)) == ("6.8.0-45-generic", "ELF VMCOREINFO note (OSRELEASE)")


def test_qemu_elf_with_and_without_the_guests_vmcoreinfo() -> None:
    cpus = prstatus() + note(b"QEMU", 0, b"\0" * 432)
    bare = elf64(cpus * 2)
    fmt = detect_format(bare[:HEAD_SIZE])
    assert (fmt.kind, fmt.producer) == ("elf", "qemu")
    assert find_release(bytes_reader(bare)) is None
    with_info = elf64(cpus * 2 + note(b"VMCOREINFO", 0, vmcoreinfo(RELEASE)))
    assert detect_format(with_info[:HEAD_SIZE]).producer == "qemu"
    assert find_release(bytes_reader(with_info)) == (RELEASE, "ELF VMCOREINFO note (OSRELEASE)")


def test_qemu_kdump_zlib_release_from_the_sub_header() -> None:
    data = qemu_kdump("6.8.0-45-generic")
    # QEMU puts its notes after the two header blocks: past the watcher's 8 KiB head
    assert detect_format(data[:HEAD_SIZE]).producer is None
    fmt = detect_format(data)
    assert (fmt.kind, fmt.compression, fmt.producer, fmt.kernel) == ("kdump-compressed", "zlib", "qemu", None)
    assert find_release(bytes_reader(data)) == (
        "6.8.0-45-generic",
        "kdump-compressed sub-header (VMCOREINFO OSRELEASE)",
    )
    assert find_release(bytes_reader(qemu_kdump(None))) is None


def test_xen_dump_core() -> None:
    data = xen_dump_core()
    fmt = detect_format(data[:HEAD_SIZE])
    assert (fmt.kind, fmt.producer) == ("elf", "xen")
    info = read_elf(bytes_reader(data))
    assert info is not None and info.phnum == 0
    assert {".note.Xen", ".xen_prstatus", ".xen_pages"} <= set(info.section_names)
    assert [n.type for n in info.notes if n.name == "Xen"] == [0x2000000, 0x2000001, 0x2000003]
    assert find_release(bytes_reader(data)) is None


@pytest.mark.parametrize("magic", [0xBED0BED0, 0xBED2BED2, 0xBED3BED3, 0xBAD1BAD1, 0xBAD2BAD2])
def test_vmware_checkpoint_magics(magic: int) -> None:
    header = struct.pack("<III", magic, 8, 3) + b"Checkpoint".ljust(64, b"\0")
    fmt = detect_format(header)
    assert (fmt.kind, fmt.producer) == ("vmware-vmss", "vmware")
    # the same number stored big-endian is not VMware's (crash reads it as a host u32 on x86)
    assert detect_format(struct.pack(">I", magic) + b"\0" * 60).kind == "unknown"


def test_qemu_migration_stream_and_libvirt_wrapper() -> None:
    assert detect_format(b"QEVM\0\0\0\x03" + b"\0" * 64).kind == "qemu-savevm"
    assert detect_format(b"LibvirtQemudSave" + b"\0" * 64).kind == "qemu-savevm"


def test_flattened_elf_split_over_records() -> None:
    notes = prstatus() + note(b"VMCOREINFO", 0, vmcoreinfo(RELEASE))
    image = elf64(notes)
    # makedumpfile -F writes the ELF header, then the notes, as separate records, not in order
    stream = flattened([(0x1000, image[0x1000:0x2000]), (0, image[:0x1000]), (0x2000, image[0x2000:])])
    assert find_release(bytes_reader(stream)) == (
        RELEASE,
        "flattened stream, ELF VMCOREINFO note (OSRELEASE)",
    )
    # the ELF header record sits past the first 8 KiB here: a longer head shows it
    assert detect_format(stream[:HEAD_SIZE]).inner is None
    fmt = detect_format(stream, stream[-16:])
    assert (fmt.kind, fmt.inner, fmt.end_marker) == ("flattened", "elf", True)


def test_flattened_kdump_from_the_mock_writer() -> None:
    spec = DumpSpec(size=64 * 1024, chunk=8 * 1024, kernel="6.4.0-150600.23.25-default")
    stream = b"".join(image_stream(spec, "flattened", None))
    assert find_release(bytes_reader(stream)) == (
        "6.4.0-150600.23.25-default",
        "flattened stream, kdump-compressed header (utsname release)",
    )


@pytest.mark.parametrize(
    ("wrap", "name"), [(gzip.compress, "gzip"), (lzma.compress, "xz"), (bz2.compress, "bzip2")]
)
def test_release_inside_compressed_wrappers(wrap: object, name: str) -> None:
    image = elf64(note(b"VMCOREINFO", 0, vmcoreinfo("6.1.0-50-amd64")))
    data = wrap(image)  # type: ignore[operator]
    assert find_release(bytes_reader(data)) == (
        "6.1.0-50-amd64",
        f"{name}-compressed, ELF VMCOREINFO note (OSRELEASE)",
    )


def test_real_head_inside_gzip() -> None:
    head = (DATA / "sysrq" / "vmcore.head").read_bytes()
    found = find_release(bytes_reader(gzip.compress(head)))
    assert found == ("6.1.0-50-amd64", "gzip-compressed, kdump-compressed header (utsname release)")


def test_hostile_releases_and_notes_are_refused() -> None:
    for bad in ("6.1.0\x1b[2J", "6.1 0", "", "x" * 200, "-rc1", "6.1.0\t"):
        assert valid_release(bad) is None
        image = elf64(note(b"VMCOREINFO", 0, f"OSRELEASE={bad}\n".encode()))
        assert find_release(bytes_reader(image)) is None
    # a note whose sizes run past the data ends the walk instead of reading beyond it
    cut = struct.pack("<III", 11, 0xFFFFFF00, 0) + b"VMCOREINFO\0\0" + b"OSRELEASE=6.1.0"
    assert list(parse_notes(cut)) == []
    # absurd header counts and offsets are bounded, not followed
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    header = ident + struct.pack(
        "<HHIQQQIHHHHHH", 4, 62, 1, 0, 1 << 60, 1 << 60, 0, 64, 56, 0xFFFF, 64, 0xFFFF, 7
    )
    info = read_elf(bytes_reader(header))
    assert info is not None and info.notes == () and info.section_names == ()
    # a utsname release that is not one, with no VMCOREINFO behind it
    kdump = bytearray(kdump_header(DumpSpec(kernel="6.1\x1b]0;x\x07")))
    assert find_release(bytes_reader(bytes(kdump))) is None


def test_flattened_stream_with_absurd_records_stops() -> None:
    records = (b"makedumpfile\0\0\0\0" + struct.pack(">qq", 1, 1)).ljust(0x1000, b"\0")
    records += struct.pack(">qq", 0, 1 << 62)  # claims an exabyte: nothing past it is read
    assert find_release(bytes_reader(records)) is None
    negative = (b"makedumpfile\0\0\0\0" + struct.pack(">qq", 1, 1)).ljust(0x1000, b"\0")
    negative += struct.pack(">qq", -5, 16) + b"\0" * 16
    assert find_release(bytes_reader(negative)) is None
