"""The crashkernel= parser: every syntax, and the reservation that applies to this RAM."""

from __future__ import annotations

import pytest

from oob.preflight.crashkernel import CrashkernelError, human, parse_size, parse_value, reservation

M, G = 1 << 20, 1 << 30


@pytest.mark.parametrize(
    ("text", "size"),
    [("128M", 128 * M), ("1G", G), ("65536K", 64 * M), ("4096", 4096), ("2g", 2 * G), ("1T", 1 << 40)],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_plain_size() -> None:
    res = reservation("BOOT_IMAGE=/vmlinuz ro crashkernel=256M quiet", 16 * G)
    assert res is not None and (res.size, res.offset) == (256 * M, None)
    assert res.describe() == "256M"


def test_size_at_offset() -> None:
    res = reservation("crashkernel=256M@16M", 16 * G)
    assert res is not None and (res.size, res.offset) == (256 * M, 16 * M)
    assert res.describe() == "256M at 16M"


@pytest.mark.parametrize(
    ("ram", "size"), [(G, 64 * M), (512 * M, 64 * M), (2 * G, 128 * M), (64 * G, 128 * M), (256 * M, 0)]
)
def test_ranges_choose_by_ram(ram: int, size: int) -> None:
    res = reservation("crashkernel=512M-2G:64M,2G-:128M", ram)
    assert res is not None and res.size == size


def test_ranges_with_offset_and_rhel9_default() -> None:
    res = reservation("crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M@16M", 16 * G)
    assert res is not None and (res.size, res.offset) == (256 * M, 16 * M)
    value = parse_value("1G-4G:192M,4G-64G:256M,64G-:512M")
    assert [(r.start, r.end, r.size) for r in value.ranges] == [
        (G, 4 * G, 192 * M),
        (4 * G, 64 * G, 256 * M),
        (64 * G, None, 512 * M),
    ]


def test_ranges_without_ram_are_unknown() -> None:
    res = reservation("crashkernel=512M-2G:64M,2G-:128M", None)
    assert res is not None and res.size is None


def test_high_and_low_add_up() -> None:
    res = reservation("crashkernel=242M,high crashkernel=72M,low", 16 * G)
    assert res is not None and (res.size, res.high, res.low) == (314 * M, 242 * M, 72 * M)
    assert res.describe() == "242M high + 72M low"
    high_only = reservation("crashkernel=512M,high", 16 * G)
    assert high_only is not None and (high_only.size, high_only.high, high_only.low) == (
        512 * M,
        512 * M,
        None,
    )


def test_low_alone_is_refused() -> None:
    with pytest.raises(CrashkernelError, match="low part alone"):
        reservation("crashkernel=72M,low", 16 * G)


def test_last_value_wins() -> None:
    res = reservation("crashkernel=128M crashkernel=256M", 16 * G)
    assert res is not None and res.size == 256 * M


def test_auto_is_parsed_but_has_no_size() -> None:
    res = reservation("crashkernel=auto", 16 * G)
    assert res is not None and res.size is None and res.values[0].kind == "auto"


def test_absent() -> None:
    assert reservation("BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro", 16 * G) is None


@pytest.mark.parametrize(
    "text",
    [
        "crashkernel=",
        "crashkernel=lots",
        "crashkernel=256M,middle",
        "crashkernel=512M-:",
        "crashkernel=2G-1G:64M",
        "crashkernel=256M,high@16M",
    ],
)
def test_bad_values(text: str) -> None:
    with pytest.raises(CrashkernelError):
        reservation(text, 16 * G)


def test_human() -> None:
    assert (human(256 * M), human(G + G // 2), human(4096)) == ("256M", "1536M", "4K")
