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
"""

from __future__ import annotations

import bz2
import lzma
import struct
import zlib
from dataclasses import dataclass

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
        for key in ("inner", "end_marker", "compression", "kernel", "nodename"):
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
            )
    return VmcoreFormat("unknown")


def needs_tail(fmt: VmcoreFormat) -> bool:
    """Only a flattened stream says at its end whether it is whole."""
    return fmt.kind == "flattened"


def _flattened(head: bytes, tail: bytes | None) -> VmcoreFormat:
    end_marker = None if tail is None else tail[-16:] == FLAT_END_MARKER
    inner: VmcoreFormat | None = None
    # the first record (offset, size) follows the 0x1000-byte header; its data is the
    # start of the dump makedumpfile would have written to a seekable file
    if len(head) >= FLAT_HEADER_SIZE + 16:
        offset, size = struct.unpack(">qq", head[FLAT_HEADER_SIZE : FLAT_HEADER_SIZE + 16])
        if offset == 0 and size > 0:
            data = head[FLAT_HEADER_SIZE + 16 : FLAT_HEADER_SIZE + 16 + size]
            if data:
                inner = detect_format(data)
    if inner is None or inner.kind in ("unknown", "empty"):
        return VmcoreFormat("flattened", end_marker=end_marker)
    return VmcoreFormat(
        "flattened",
        inner=inner.kind,
        end_marker=end_marker,
        compression=inner.compression,
        kernel=inner.kernel,
        nodename=inner.nodename,
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
    return VmcoreFormat(
        "kdump-compressed",
        marked_incomplete=bool(status is not None and status & DUMP_DH_COMPRESSED_INCOMPLETE),
        compression=_compression(status) if status is not None else None,
        kernel=_uts_field(head, 2),
        nodename=_uts_field(head, 1),
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
    return VmcoreFormat("elf", marked_incomplete=bool(flags & DUMP_ELF_INCOMPLETE))


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
