"""What a vmcore is, from its first bytes (and, for a flattened stream, its last 16).

The watcher reads only :data:`HEAD_SIZE` bytes from the start of a dump file and
:data:`TAIL_SIZE` from its end: dumps are gigabytes and may sit on a server across the
network, so nothing here ever needs the whole file.

Signatures (makedumpfile ``makedumpfile.h``/``diskdump_mod.h``/``IMPLEMENTATION``):

- flattened (``makedumpfile -F``): ``makedumpfile\\0\\0\\0\\0`` at 0, big-endian int64 type=1
  and version=1, padded to 0x1000; then records (int64 offset, int64 size, data), and 16
  bytes of 0xFF at the very end.  No end marker: truncated or still being written.
- kdump-compressed: ``KDUMP   `` (legacy ``DISKDUMP``); header ``status`` bit 0x8 means
  makedumpfile gave up part-way (e.g. the disk filled) and marked the dump incomplete.
- ELF: ``\\x7fELF``; makedumpfile sets ``e_flags`` bit 0x1 on an incomplete dump.
- Debian may wrap ``dump.*`` in gzip, bzip2, lz4 or xz; for gzip, bzip2 and xz the inner
  format is identified by decompressing the first bytes.

Hypervisor dumps (sources in docs/ANALYSIS-HANDOFF.md):

- QEMU ``dump-guest-memory`` / ``virsh dump --memory-only``: ELF whose PT_NOTE carries a
  ``QEMU`` note per vCPU (crash's netdump.c tells them apart by that name); with
  ``--format kdump-zlib|kdump-lzo|kdump-snappy`` the same data in the kdump-compressed
  format, its ``QEMU`` notes in the kdump sub-header's note area.
- ``virsh dump`` without ``--memory-only``: a QEMU migration stream, ``QEVM`` (or libvirt's
  ``LibvirtQemudSave`` wrapper), which crash reads as "kvmdump" (qemu-load.c).
- Xen ``xl dump-core``: ELF ``ET_CORE`` with section headers and no program headers,
  sections ``.note.Xen``, ``.xen_prstatus``, ``.xen_pages``... (libxc xc_core.c).
- VMware ``.vmss`` (suspend) / ``.vmsn`` (snapshot): a ``cptdumpheader`` whose first
  little-endian u32 is 0xbed0bed0, 0xbed2bed2, 0xbed3bed3, 0xbad1bad1 or 0xbad2bad2
  (crash's vmware_vmss.h).

The kernel release (:func:`find_release`) comes from the kdump header's utsname, or the
VMCOREINFO ``OSRELEASE=`` line (ELF note, or the kdump sub-header's copy), looking
through a flattened stream's records and a compressed wrapper's first megabytes.
"""

from __future__ import annotations

import bz2
import lzma
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple, Protocol

#: bytes read from the start of a dump file: the flattened header (0x1000), one record
#: header (16) and the inner kdump header (464) fit easily
HEAD_SIZE = 8192
#: bytes read from the end of a flattened dump: its end marker
TAIL_SIZE = 16

FLAT_SIGNATURE = b"makedumpfile\0\0\0\0"
FLAT_HEADER_SIZE = 0x1000
FLAT_END_MARKER = b"\xff" * 16
KDUMP_SIGNATURES = (b"KDUMP   ", b"DISKDUMP")
ELF_MAGIC = b"\x7fELF"

# disk_dump_header.status bits
DUMP_DH_COMPRESSED_ZLIB = 0x1
DUMP_DH_COMPRESSED_LZO = 0x2
DUMP_DH_COMPRESSED_SNAPPY = 0x4
DUMP_DH_COMPRESSED_INCOMPLETE = 0x8
DUMP_DH_COMPRESSED_ZSTD = 0x20
#: makedumpfile's flag in ELF e_flags
DUMP_ELF_INCOMPLETE = 0x1

_WRAPPERS: tuple[tuple[str, bytes], ...] = (
    ("gzip", b"\x1f\x8b"),
    ("bzip2", b"BZh"),
    ("lz4", b"\x04\x22\x4d\x18"),
    ("xz", b"\xfd7zXZ\x00"),
)

#: VMware checkpoint (``.vmss``/``.vmsn``) magic numbers, read as a little-endian u32
VMWARE_MAGICS: dict[int, str] = {
    0xBED0BED0: "old",
    0xBED2BED2: "",
    0xBED3BED3: "partial",
    0xBAD1BAD1: "restored",
    0xBAD2BAD2: "norestore",
}
#: QEMU's migration stream (``virsh dump`` without ``--memory-only``) and libvirt's save header
QEMU_SAVEVM_MAGIC = b"QEVM"
LIBVIRT_SAVE_MAGIC = b"LibvirtQemudSave"

#: offsets of ``status`` in disk_dump_header: after signature[8], header_version (4),
#: new_utsname (6 x 65) comes struct timeval, 8-aligned and 16 bytes on 64-bit (status at
#: 424) or 4-aligned and 8 bytes on 32-bit (status at 412)
_KDUMP_STATUS_OFFSETS = (424, 412)
_UTS_OFFSET = 12
_UTS_FIELD = 65


@dataclass(frozen=True)
class VmcoreFormat:
    #: "flattened", "kdump-compressed", "elf", "gzip", "bzip2", "lz4", "xz", "unknown";
    #: "empty" when the file has no bytes yet
    kind: str
    #: for flattened and compressed wrappers: the format inside, when it could be seen
    inner: str | None = None
    #: True when the file itself says it is incomplete (kdump status bit, ELF e_flags bit)
    marked_incomplete: bool = False
    #: flattened only: the 16-byte end marker is present (None: not checked or not flattened)
    end_marker: bool | None = None
    #: kdump-compressed: "zlib", "lzo", "snappy", "zstd" or "none"
    compression: str | None = None
    #: kernel release and node name from the kdump header, when present
    kernel: str | None = None
    nodename: str | None = None
    #: who wrote it, when the file says: "qemu" (dump-guest-memory), "xen" (xl dump-core),
    #: "vmware" (.vmss/.vmsn), "kdump" (an ELF with the kernel's VMCOREINFO note)
    producer: str | None = None

    @property
    def label(self) -> str:
        """Short text for people: ``flattened (kdump-compressed, lzo)``."""
        details = [d for d in (self.inner, self.compression if self.compression != "none" else None) if d]
        text = f"{self.kind} ({', '.join(details)})" if details else self.kind
        if self.end_marker is False:
            text += ", no end marker"
        if self.marked_incomplete:
            text += ", marked incomplete"
        return text

    @property
    def truncated(self) -> bool:
        """The file says it is not whole: incomplete flag, or a flattened stream without
        its end marker."""
        return self.marked_incomplete or self.end_marker is False

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"kind": self.kind}
        for key in ("inner", "end_marker", "compression", "kernel", "nodename", "producer"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        data["marked_incomplete"] = self.marked_incomplete
        return data


def detect_format(head: bytes, tail: bytes | None = None) -> VmcoreFormat:
    """The format of a dump file from its first bytes (and the last 16, if read)."""
    if not head:
        return VmcoreFormat("empty")
    if head.startswith(FLAT_SIGNATURE):
        return _flattened(head, tail)
    if head[:8] in KDUMP_SIGNATURES:
        return _kdump_compressed(head)
    if head.startswith(ELF_MAGIC):
        return _elf(head)
    if len(head) >= 4 and struct.unpack_from("<I", head)[0] in VMWARE_MAGICS:
        return VmcoreFormat("vmware-vmss", producer="vmware")
    if head.startswith((QEMU_SAVEVM_MAGIC, LIBVIRT_SAVE_MAGIC)):
        return VmcoreFormat("qemu-savevm", producer="qemu")
    for name, magic in _WRAPPERS:
        if head.startswith(magic):
            data = _unwrap(name, head)
            if not data:
                return VmcoreFormat(name)
            inner = detect_format(data)
            return VmcoreFormat(
                name,
                inner=inner.kind,
                compression=inner.compression,
                kernel=inner.kernel,
                nodename=inner.nodename,
                producer=inner.producer,
            )
    return VmcoreFormat("unknown")


def needs_tail(fmt: VmcoreFormat) -> bool:
    """Only a flattened stream says at its end whether it is whole."""
    return fmt.kind == "flattened"


def _flattened(head: bytes, tail: bytes | None) -> VmcoreFormat:
    end_marker = None if tail is None else tail[-16:] == FLAT_END_MARKER
    # the records rebuild the start of the dump makedumpfile would have written to a
    # seekable file; the first bytes of that image say what it is
    image = flattened_reader(_bytes_reader(head), limit=len(head))(0, len(head))
    inner = detect_format(image) if image.strip(b"\0") else None
    if inner is None or inner.kind in ("unknown", "empty"):
        return VmcoreFormat("flattened", end_marker=end_marker)
    return VmcoreFormat(
        "flattened",
        inner=inner.kind,
        end_marker=end_marker,
        compression=inner.compression,
        kernel=inner.kernel,
        nodename=inner.nodename,
        producer=inner.producer,
        # in a stream makedumpfile cannot go back to the header, but a rewritten header
        # record may still carry the flag
        marked_incomplete=inner.marked_incomplete,
    )


def _kdump_compressed(head: bytes) -> VmcoreFormat:
    status = None
    for offset in _KDUMP_STATUS_OFFSETS:
        for order in ("<", ">"):
            if len(head) < offset + 8:
                continue
            candidate, block_size = struct.unpack_from(f"{order}Ii", head, offset)
            # block_size is the page size: a power of two from 512 to 64 KiB tells us the
            # guess of word size and byte order was right
            if 512 <= block_size <= 65536 and block_size & (block_size - 1) == 0:
                status = candidate
                break
        if status is not None:
            break
    notes = _kdump_notes(_bytes_reader(head))
    return VmcoreFormat(
        "kdump-compressed",
        marked_incomplete=bool(status is not None and status & DUMP_DH_COMPRESSED_INCOMPLETE),
        compression=_compression(status) if status is not None else None,
        kernel=_uts_field(head, 2),
        nodename=_uts_field(head, 1),
        producer="qemu" if any(note.name == "QEMU" for note in notes) else None,
    )


def _compression(status: int) -> str:
    for bit, name in (
        (DUMP_DH_COMPRESSED_ZLIB, "zlib"),
        (DUMP_DH_COMPRESSED_LZO, "lzo"),
        (DUMP_DH_COMPRESSED_SNAPPY, "snappy"),
        (DUMP_DH_COMPRESSED_ZSTD, "zstd"),
    ):
        if status & bit:
            return name
    return "none"


def _uts_field(head: bytes, index: int) -> str | None:
    """new_utsname: sysname, nodename, release, version, machine, domainname."""
    start = _UTS_OFFSET + index * _UTS_FIELD
    raw = head[start : start + _UTS_FIELD]
    if len(raw) < _UTS_FIELD:
        return None
    text = raw.split(b"\0", 1)[0].decode("ascii", "replace").strip()
    return text or None


def _elf(head: bytes) -> VmcoreFormat:
    if len(head) < 52:
        return VmcoreFormat("elf")
    elf_class, data = head[4], head[5]
    order = ">" if data == 2 else "<"
    offset = 48 if elf_class == 2 else 36
    if len(head) < offset + 4:
        return VmcoreFormat("elf")
    (flags,) = struct.unpack_from(f"{order}I", head, offset)
    info = read_elf(_bytes_reader(head))
    return VmcoreFormat(
        "elf",
        marked_incomplete=bool(flags & DUMP_ELF_INCOMPLETE),
        producer=elf_producer(info) if info else None,
    )


def _unwrap(kind: str, head: bytes) -> bytes:
    """As much of the inner stream as the first bytes give; b"" if it cannot be seen."""
    try:
        if kind == "gzip":
            return zlib.decompressobj(wbits=31).decompress(head, 4096)
        if kind == "bzip2":
            return bz2.BZ2Decompressor().decompress(head, 4096)
        if kind == "xz":
            return lzma.LZMADecompressor().decompress(head, 4096)
    except (zlib.error, OSError, lzma.LZMAError, EOFError):
        return b""
    # lz4 needs a library the project does not carry; the wrapper alone is reported
    return b""


# --- reading deeper than the head: ELF notes and sections, VMCOREINFO, the kernel release --

#: ``read(offset, size)``: up to ``size`` bytes of the image at ``offset`` (fewer at its end,
#: b"" where it cannot be read).  A head in memory, a local file, a flattened stream's
#: reassembled records, a decompressed wrapper: the parsers below see only this.
Reader = Callable[[int, int], bytes]

#: bounds for what a hostile header can make us read or walk
MAX_NOTES_BYTES = 1 << 20
MAX_NOTES = 4096
MAX_HEADERS = 4096
MAX_VMCOREINFO = 64 * 1024
#: how much of the image inside a flattened stream or a compressed wrapper is rebuilt
INNER_LIMIT = 4 << 20
#: records of a flattened stream looked at, at most
MAX_FLAT_RECORDS = 200_000

#: what a kernel release may look like: ``6.1.0-50-amd64``, ``5.14.0-427.13.1.el9_4.x86_64``,
#: ``6.4.0-150600.23.25-default``, ``6.12.38+deb13-amd64``
_RELEASE = re.compile(r"[0-9][A-Za-z0-9._+~-]{0,95}")
_VMCOREINFO_KEY = re.compile(r"[A-Za-z0-9_().]{1,128}")


class ElfNote(NamedTuple):
    name: str
    type: int
    desc: bytes


@dataclass(frozen=True)
class ElfInfo:
    """What oob reads of an ELF dump's headers (bounded, shape-checked)."""

    elf_class: int
    order: str
    e_type: int
    machine: int
    flags: int
    phnum: int
    shnum: int
    notes: tuple[ElfNote, ...]
    section_names: tuple[str, ...]


class KernelRelease(NamedTuple):
    """A kernel release and where in the dump it was read."""

    release: str
    where: str


def valid_release(text: str | None) -> str | None:
    """``text`` when it looks like a kernel release (printable, no spaces, bounded), else None."""
    if text and _RELEASE.fullmatch(text):
        return text
    return None


def _bytes_reader(data: bytes) -> Reader:
    def read(offset: int, size: int) -> bytes:
        if offset < 0 or size <= 0:
            return b""
        return data[offset : offset + size]

    return read


def bytes_reader(data: bytes) -> Reader:
    """A :data:`Reader` over bytes in memory (a head, a decompressed prefix)."""
    return _bytes_reader(data)


def read_elf(read: Reader) -> ElfInfo | None:
    """The ELF header, its notes (PT_NOTE segments and SHT_NOTE sections) and section names.

    Every count, offset and size comes from the file and is bounded before use; what
    cannot be read is left out, never guessed."""
    ident = read(0, 64)
    if len(ident) < 52 or not ident.startswith(ELF_MAGIC):
        return None
    elf_class, data = ident[4], ident[5]
    if elf_class not in (1, 2) or data not in (1, 2):
        return None
    order = ">" if data == 2 else "<"
    wide = elf_class == 2
    if wide and len(ident) < 64:
        return None
    # the 64-bit header has 8-byte entry, phoff and shoff; everything else is alike
    (
        e_type,
        machine,
        _version,
        _entry,
        phoff,
        shoff,
        flags,
        _ehsize,
        phentsize,
        phnum,
        shentsize,
        shnum,
        shstrndx,
    ) = struct.unpack_from(f"{order}HHI{'QQQ' if wide else 'III'}IHHHHHH", ident, 16)
    if wide:
        ph_format, sh_format = f"{order}IIQQQQQQ", f"{order}IIQQQQIIQQ"
    else:
        ph_format, sh_format = f"{order}IIIIIIII", f"{order}IIIIIIIIII"
    notes: list[ElfNote] = []
    budget = [MAX_NOTES_BYTES]
    ph_size = struct.calcsize(ph_format)
    if phoff and phentsize >= ph_size and 0 < phnum <= MAX_HEADERS:
        table = read(phoff, phentsize * phnum)
        for index in range(len(table) // phentsize):
            fields = struct.unpack_from(ph_format, table, index * phentsize)
            if elf_class == 2:
                p_type, p_offset, p_filesz = fields[0], fields[2], fields[5]
            else:
                p_type, p_offset, p_filesz = fields[0], fields[1], fields[4]
            if p_type == 4:  # PT_NOTE
                notes.extend(_notes_at(read, p_offset, p_filesz, order, budget))
    names: list[str] = []
    sh_size = struct.calcsize(sh_format)
    if shoff and shentsize >= sh_size and 0 < shnum <= MAX_HEADERS:
        table = read(shoff, shentsize * shnum)
        sections = []
        for index in range(len(table) // shentsize):
            fields = struct.unpack_from(sh_format, table, index * shentsize)
            sh_name, sh_type = fields[0], fields[1]
            # sh_offset and sh_size are fields 4 and 5 in both classes
            sh_offset, sh_size_ = fields[4], fields[5]
            sections.append((sh_name, sh_type, sh_offset, sh_size_))
        strtab = b""
        if shstrndx < len(sections):
            _, _, str_offset, str_size = sections[shstrndx]
            strtab = read(str_offset, min(str_size, 64 * 1024))
        for sh_name, sh_type, sh_offset, sh_size_ in sections:
            if strtab and sh_name < len(strtab):
                raw = strtab[sh_name:].split(b"\0", 1)[0][:64]
                names.append(raw.decode("ascii", "replace"))
            if sh_type == 7:  # SHT_NOTE
                notes.extend(_notes_at(read, sh_offset, sh_size_, order, budget))
    return ElfInfo(
        elf_class, order, e_type, machine, flags, phnum, shnum, tuple(notes[:MAX_NOTES]), tuple(names)
    )


def _notes_at(read: Reader, offset: int, size: int, order: str, budget: list[int]) -> Iterator[ElfNote]:
    size = min(size, budget[0])
    if offset <= 0 or size <= 0:
        return
    data = read(offset, size)
    budget[0] -= len(data)
    yield from parse_notes(data, order)


def parse_notes(data: bytes, order: str = "<") -> Iterator[ElfNote]:
    """ELF notes (``namesz, descsz, type, name, desc``, each 4-aligned) until the data ends
    or a note does not fit: a zero-filled or cut note area ends the walk."""
    pos = 0
    count = 0
    while pos + 12 <= len(data) and count < MAX_NOTES:
        namesz, descsz, note_type = struct.unpack_from(f"{order}III", data, pos)
        if namesz == 0 and descsz == 0 and note_type == 0:
            return
        name_end = pos + 12 + namesz
        desc_start = pos + 12 + ((namesz + 3) & ~3)
        desc_end = desc_start + descsz
        if name_end > len(data) or desc_end > len(data):
            return
        name = data[pos + 12 : name_end].split(b"\0", 1)[0].decode("ascii", "replace")
        yield ElfNote(name, note_type, data[desc_start:desc_end])
        pos = desc_start + ((descsz + 3) & ~3)
        count += 1


def elf_producer(info: ElfInfo) -> str | None:
    """Who wrote an ELF dump: "xen" (xl dump-core), "qemu" (dump-guest-memory), "kdump"
    (the kernel's /proc/vmcore or makedumpfile's ELF output), or None."""
    sections = set(info.section_names)
    if ".note.Xen" in sections or ".xen_pages" in sections or ".xen_prstatus" in sections:
        return "xen"
    names = {note.name for note in info.notes}
    if "QEMU" in names:
        return "qemu"
    if "VMCOREINFO" in names:
        return "kdump"
    return None


def parse_vmcoreinfo(desc: bytes) -> dict[str, str]:
    """``KEY=value`` lines of a VMCOREINFO note (bounded; malformed lines skipped)."""
    values: dict[str, str] = {}
    for raw in desc[:MAX_VMCOREINFO].split(b"\n"):
        key, sep, value = raw.partition(b"=")
        if not sep:
            continue
        text_key = key.decode("ascii", "replace")
        if _VMCOREINFO_KEY.fullmatch(text_key) and text_key not in values:
            values[text_key] = value.rstrip(b"\0").decode("ascii", "replace")
    return values


def vmcoreinfo_release(desc: bytes) -> str | None:
    """The ``OSRELEASE=`` of a VMCOREINFO note, when it looks like a release."""
    return valid_release(parse_vmcoreinfo(desc).get("OSRELEASE"))


def _kdump_geometry(head: bytes) -> tuple[str, int, int] | None:
    """(byte order, offset of ``status``, block size) of a kdump-compressed header."""
    for offset in _KDUMP_STATUS_OFFSETS:
        for order in ("<", ">"):
            if len(head) < offset + 8:
                continue
            _status, block_size = struct.unpack_from(f"{order}Ii", head, offset)
            if 512 <= block_size <= 65536 and block_size & (block_size - 1) == 0:
                return order, offset, block_size
    return None


def _kdump_sub_header(read: Reader) -> tuple[str, int, int, int, int] | None:
    """(order, offset_vmcoreinfo, size_vmcoreinfo, offset_note, size_note) of a 64-bit
    kdump sub-header (header_version >= 3 has VMCOREINFO, >= 4 the ELF notes), or None."""
    head = read(0, 512)
    geometry = _kdump_geometry(head)
    if geometry is None or geometry[1] != _KDUMP_STATUS_OFFSETS[0]:
        return None
    order, _, block_size = geometry
    (version,) = struct.unpack_from(f"{order}i", head, 8)
    sub = read(block_size, 64)
    if version < 3 or len(sub) < 64:
        return None
    vmcoreinfo_offset, vmcoreinfo_size, note_offset, note_size = struct.unpack_from(f"{order}qQqQ", sub, 32)
    if version < 4:
        note_offset, note_size = 0, 0
    return order, vmcoreinfo_offset, vmcoreinfo_size, note_offset, note_size


def _kdump_notes(read: Reader) -> list[ElfNote]:
    sub = _kdump_sub_header(read)
    if sub is None:
        return []
    order, _, _, note_offset, note_size = sub
    if note_offset <= 0 or note_size <= 0:
        return []
    return list(parse_notes(read(note_offset, min(note_size, MAX_NOTES_BYTES)), order))


def kdump_vmcoreinfo(read: Reader) -> bytes:
    """The VMCOREINFO copy in a kdump-compressed sub-header (b"" when absent or unreadable)."""
    sub = _kdump_sub_header(read)
    if sub is None:
        return b""
    _, offset, size, _, _ = sub
    if offset <= 0 or size <= 0:
        return b""
    return read(offset, min(size, MAX_VMCOREINFO))


def flattened_reader(read: Reader, limit: int = INNER_LIMIT) -> Reader:
    """The first ``limit`` bytes of the image inside a flattened stream, rebuilt from its
    ``(offset, size, data)`` records (bounded in records walked and bytes kept)."""
    pieces: list[tuple[int, bytes]] = []
    pos = FLAT_HEADER_SIZE
    for _ in range(MAX_FLAT_RECORDS):
        record = read(pos, 16)
        if len(record) < 16 or record == FLAT_END_MARKER:
            break
        offset, size = struct.unpack(">qq", record)
        if offset < 0 or size <= 0:
            break
        if offset < limit:
            pieces.append((offset, read(pos + 16, min(size, limit - offset))))
        pos += 16 + size
    image = bytearray()
    for offset, data in sorted(pieces, key=lambda piece: piece[0]):
        end = offset + len(data)
        if len(image) < end:
            image.extend(b"\0" * (end - len(image)))
        image[offset:end] = data
    return _bytes_reader(bytes(image))


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...

    def decompress(self, data: bytes, max_length: int = -1, /) -> bytes: ...


def unwrapped_reader(kind: str, read: Reader, limit: int = INNER_LIMIT) -> Reader | None:
    """The first ``limit`` bytes inside a gzip, bzip2 or xz wrapper, or None (lz4, unreadable)."""
    decompressor: _Decompressor
    if kind == "gzip":
        decompressor = zlib.decompressobj(wbits=31)
    elif kind == "bzip2":
        decompressor = bz2.BZ2Decompressor()
    elif kind == "xz":
        decompressor = lzma.LZMADecompressor()
    else:
        return None
    out = bytearray()
    pos = 0
    chunk = 256 * 1024
    try:
        # the compressed bytes read are bounded too: a dump that does not compress stops
        while len(out) < limit and pos < 4 * limit and not decompressor.eof:
            data = read(pos, chunk)
            if not data:
                break
            pos += len(data)
            out += decompressor.decompress(data, limit - len(out))
    except (zlib.error, OSError, lzma.LZMAError, EOFError, ValueError):
        pass
    return _bytes_reader(bytes(out)) if out else None


def find_release(read: Reader, _depth: int = 0) -> KernelRelease | None:
    """The kernel release a dump names, and where in it that was read (None: nowhere).

    kdump-compressed: the header's utsname, else the sub-header's VMCOREINFO; ELF: the
    VMCOREINFO note's ``OSRELEASE=``; flattened: the same inside its records; gzip, bzip2,
    xz: the same inside the first megabytes.  QEMU, Xen and VMware dumps name one only
    when the guest kernel left its VMCOREINFO there."""
    head = read(0, HEAD_SIZE)
    if not head or _depth > 2:
        return None
    if head.startswith(FLAT_SIGNATURE):
        found = find_release(flattened_reader(read), _depth + 1)
        return KernelRelease(found.release, f"flattened stream, {found.where}") if found else None
    if head[:8] in KDUMP_SIGNATURES:
        uts = valid_release(_uts_field(head, 2))
        if uts:
            return KernelRelease(uts, "kdump-compressed header (utsname release)")
        release = vmcoreinfo_release(kdump_vmcoreinfo(read))
        return (
            KernelRelease(release, "kdump-compressed sub-header (VMCOREINFO OSRELEASE)") if release else None
        )
    if head.startswith(ELF_MAGIC):
        info = read_elf(read)
        for note in info.notes if info else ():
            if note.name == "VMCOREINFO":
                release = vmcoreinfo_release(note.desc)
                if release:
                    return KernelRelease(release, "ELF VMCOREINFO note (OSRELEASE)")
        return None
    for name, magic in _WRAPPERS:
        if head.startswith(magic):
            inner = unwrapped_reader(name, read)
            found = find_release(inner, _depth + 1) if inner else None
            return KernelRelease(found.release, f"{name}-compressed, {found.where}") if found else None
    return None
