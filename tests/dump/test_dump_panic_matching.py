"""Panic lines from kernel logs, and which host a dump directory belongs to."""

from __future__ import annotations

import pytest

from mocks.kdump import DumpSpec, dmesg_text
from oob.dump.layouts import parse_dir_name
from oob.dump.matching import HostMatcher, normalize
from oob.dump.panic import MAX_LINE, MAX_LINES, panic_lines
from oob.model import Host


@pytest.mark.parametrize(
    ("panic", "cause", "first", "panic_line"),
    [
        (
            "unknown_nmi",
            "unknown_nmi",
            "Uhhuh. NMI received for unknown reason 3d on CPU 0.",
            "Kernel panic - not syncing: NMI: Not continuing",
        ),
        (
            "iock_nmi",
            "iock_nmi",
            "NMI: IOCK error (debug interrupt?) for reason 75 on CPU 0.",
            "Kernel panic - not syncing: NMI IOCK error: Not continuing",
        ),
        ("hpwdt_nmi", "hpwdt_nmi", "Kernel panic - not syncing: An NMI occurred.", None),
        ("sysrq", "sysrq", "sysrq: Trigger a crash", "Kernel panic - not syncing: sysrq triggered crash"),
    ],
)
def test_panic_lines_from_a_kernel_log(panic: str, cause: str, first: str, panic_line: str | None) -> None:
    info = panic_lines(dmesg_text(DumpSpec(panic=panic)))
    assert info.cause == cause
    assert info.lines[0].startswith(first)
    assert not any(line.startswith("[") for line in info.lines), "timestamps are stripped"
    if panic_line:
        assert info.panic_line == panic_line


def test_unknown_nmi_lines_in_order() -> None:
    info = panic_lines(dmesg_text(DumpSpec(cpu=7)))
    assert info.lines == (
        "Uhhuh. NMI received for unknown reason 3d on CPU 7.",
        "Do you have a strange power saving mode enabled?",
        "Kernel panic - not syncing: NMI: Not continuing",
    )


def test_log_without_a_panic_and_other_prefixes() -> None:
    assert panic_lines("[    0.000000] Linux version 6.1\n").cause == "none"
    text = (
        "<0>[ 5.1] Uhhuh. NMI received for unknown reason 2d on CPU 1.\n"
        "[ 5.2] Dazed and confused, but trying to continue\n"
        "Kernel panic - not syncing: Out of memory and no killable processes...\n"
    )
    info = panic_lines(text)
    assert info.lines[0] == "Uhhuh. NMI received for unknown reason 2d on CPU 1."
    assert info.cause == "unknown_nmi"
    assert info.panic_line == "Kernel panic - not syncing: Out of memory and no killable processes..."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("FD00:0:0::0001", "fd00::1"),
        ("[fd00::1]", "fd00::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("Web01.Example.COM.", "web01.example.com"),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


def hosts() -> list[Host]:
    return [
        Host(name="web01", address="192.0.2.11", aliases=("web01.example.com",)),
        Host(name="web02", address="fd00::12"),
        Host(name="db01.example.com", address="192.0.2.21"),
        Host(name="db01.lab.example.com", address="192.0.2.31"),
        Host(name="cache", address="192.0.2.41", aliases=("198.51.100.41", "cache-a")),
    ]


@pytest.mark.parametrize(
    ("dirname", "host", "problem"),
    [
        ("192.0.2.11-2024-05-02-03:04:05", "web01", None),
        ("fd00:0::12-2024-05-02-03:04:05", "web02", None),
        ("fd00::12-202405020304", "web02", None),
        ("web01.example.com-2024-05-02-03-04", "web01", None),
        ("WEB01-202405020304", "web01", None),  # a short name: unique among the hosts
        ("web01.other.net-202405020304", "web01", None),  # short part unique: still web01
        ("db01.example.com-2024-05-02-03-04", "db01.example.com", None),
        ("db01-2024-05-02-03-04", None, "ambiguous"),  # two hosts are db01.<something>
        ("198.51.100.41-202405020304", "cache", None),  # an alias
        ("cache-a-202405020304", "cache", None),
        ("192.0.2.99-202405020304", None, "unknown"),
        ("127.0.0.1-2024-05-02-03:04:05", None, "local-form"),
        ("202405020304", None, "local-form"),
    ],
)
def test_attribution_on_a_shared_server(dirname: str, host: str | None, problem: str | None) -> None:
    parsed = parse_dir_name(dirname)
    assert parsed is not None
    attribution = HostMatcher(hosts()).attribute(parsed)
    assert (attribution.host, attribution.problem) == (host, problem)


def test_local_form_belongs_to_the_only_host_of_a_target() -> None:
    only = HostMatcher([Host(name="web01", address="192.0.2.11")])
    assert only.attribute(parse_dir_name("127.0.0.1-2024-05-02-03:04:05")).host == "web01"
    assert only.attribute(parse_dir_name("2024-05-02-03-04")).host == "web01"
    # but a name that says another host is never taken for it
    assert only.attribute(parse_dir_name("192.0.2.12-2024-05-02-03:04:05")).host is None


def test_panic_lines_are_bounded_in_number_and_length() -> None:
    log = "".join(f"[ {i}.0] Kernel panic - not syncing: {'x' * 2000} {i}\n" for i in range(100))
    info = panic_lines(log)
    assert len(info.lines) == MAX_LINES
    assert all(len(line) <= MAX_LINE for line in info.lines)
    assert info.lines[-1].startswith("Kernel panic - not syncing: xxx") and info.lines[-1].endswith("…")
    assert info.cause == "other"
