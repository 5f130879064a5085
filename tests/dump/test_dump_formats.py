"""Dump formats from their first bytes (and a flattened stream's last 16), on images the mock
writer produces with real headers."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest

from mocks.kdump import DumpSpec, elf_header, image_stream, kdump_header, mark_incomplete, xxh32
from oob.dump.formats import HEAD_SIZE, TAIL_SIZE, detect_format, needs_tail


def image(fmt: str, wrapper: str | None = None, **spec: object) -> bytes:
    values: dict[str, object] = {
        "size": 64 * 1024,
        "chunk": 8 * 1024,
        "hostname": "db01",
        "kernel": "6.4.0-150600.23.25-default",
    }
    values.update(spec)
    return b"".join(image_stream(DumpSpec(**values), fmt, wrapper))  # type: ignore[arg-type]


def test_kdump_compressed_header() -> None:
    data = image("kdump-compressed")
    fmt = detect_format(data[:HEAD_SIZE])
    assert fmt.kind == "kdump-compressed"
    assert (fmt.compression, fmt.kernel, fmt.nodename) == ("lzo", "6.4.0-150600.23.25-default", "db01")
    assert not fmt.marked_incomplete and not fmt.truncated
    assert not needs_tail(fmt)


def test_kdump_incomplete_status_bit(tmp_path: Path) -> None:
    path = tmp_path / "vmcore-incomplete"
    path.write_bytes(image("kdump-compressed"))
    with open(path, "r+b") as handle:
        mark_incomplete(handle, "kdump-compressed")
    fmt = detect_format(path.read_bytes()[:HEAD_SIZE])
    assert fmt.marked_incomplete and fmt.truncated
    assert "marked incomplete" in fmt.label


def test_legacy_diskdump_and_other_word_sizes() -> None:
    header = bytearray(kdump_header(DumpSpec(), status=0x1 | 0x8))
    header[:8] = b"DISKDUMP"
    assert detect_format(bytes(header)).kind == "kdump-compressed"
    assert detect_format(bytes(header)).marked_incomplete
    # a 32-bit big-endian header: status at 412, block size right after it
    other = bytearray(HEAD_SIZE)
    other[:8] = b"KDUMP   "
    struct.pack_into(">Ii", other, 412, 0x8 | 0x4, 4096)
    fmt = detect_format(bytes(other))
    assert (fmt.marked_incomplete, fmt.compression) == (True, "snappy")


def test_flattened_with_and_without_end_marker() -> None:
    data = image("flattened")
    fmt = detect_format(data[:HEAD_SIZE], data[-TAIL_SIZE:])
    assert (fmt.kind, fmt.inner, fmt.end_marker, fmt.truncated) == (
        "flattened",
        "kdump-compressed",
        True,
        False,
    )
    assert needs_tail(fmt)
    cut = data[: len(data) // 2]
    truncated = detect_format(cut[:HEAD_SIZE], cut[-TAIL_SIZE:])
    assert truncated.end_marker is False and truncated.truncated
    assert "no end marker" in truncated.label
    # the head alone says nothing about the end
    assert detect_format(data[:HEAD_SIZE]).end_marker is None


def test_elf_and_its_incomplete_flag() -> None:
    header = elf_header()
    assert detect_format(header).kind == "elf"
    assert not detect_format(header).marked_incomplete
    handle = io.BufferedRandom(io.BytesIO(header))  # type: ignore[arg-type]
    mark_incomplete(handle, "elf")
    handle.seek(0)
    assert detect_format(handle.read()).marked_incomplete


@pytest.mark.parametrize(
    ("wrapper", "kind", "inner"),
    [
        ("gz", "gzip", "kdump-compressed"),
        ("xz", "xz", "kdump-compressed"),
        # bzip2 and lz4 do not show their content in the first 8 KiB (bzip2 blocks are 900 KB;
        # lz4 needs a library): the wrapper alone is reported
        ("bz2", "bzip2", None),
        ("lz4", "lz4", None),
    ],
)
def test_compressed_wrappers(wrapper: str, kind: str, inner: str | None) -> None:
    data = image("kdump-compressed", wrapper)
    fmt = detect_format(data[:HEAD_SIZE])
    assert (fmt.kind, fmt.inner) == (kind, inner)


def test_lz4_frame_is_valid() -> None:
    # xxHash32 reference value, and the frame descriptor checksum computed from it
    assert xxh32(b"") == 0x02CC5D05
    data = image("kdump-compressed", "lz4")
    assert data[:4] == b"\x04\x22\x4d\x18"
    assert data[6] == (xxh32(data[4:6]) >> 8) & 0xFF
    assert data.endswith(b"\0\0\0\0")


def test_unknown_and_empty() -> None:
    assert detect_format(b"").kind == "empty"
    assert detect_format(b"hello world").kind == "unknown"
    assert detect_format(b"\x7fELF").kind == "elf"  # too short for its flags: still ELF
