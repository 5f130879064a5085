"""Directory names and completion rules of every layout (docs/KDUMP.md), without I/O."""

from __future__ import annotations

from datetime import datetime

import pytest

from oob.dump.layouts import Family, FileInfo, assess, families_for, parse_dir_name, texts_needed
from oob.errors import UsageError

R, S, SO, D = Family.RHEL, Family.SUSE, Family.SUSE_OLD, Family.DEBIAN


@pytest.mark.parametrize(
    ("name", "families", "identity", "form", "stamp"),
    [
        # RHEL/Fedora: local, NFS/SSH with IPv4 and IPv6, pre-2015 dots, raw target, kdumpctl test
        ("127.0.0.1-2024-05-02-03:04:05", (R,), None, "standard", datetime(2024, 5, 2, 3, 4, 5)),
        ("192.0.2.11-2024-05-02-03:04:05", (R,), "192.0.2.11", "standard", datetime(2024, 5, 2, 3, 4, 5)),
        ("fd00:12::7-2024-05-02-03:04:05", (R,), "fd00:12::7", "standard", datetime(2024, 5, 2, 3, 4, 5)),
        ("2001:db8::1:2024-2024-05-02-03:04:05", (R,), "2001:db8::1:2024", "standard", None),
        ("127.0.0.1-2014.12.31-23:59:58", (R,), None, "pre-2015", datetime(2014, 12, 31, 23, 59, 58)),
        ("198.51.100.3-2014.12.31-23:59:58", (R,), "198.51.100.3", "pre-2015", None),
        ("kdump-test-5f2c9a", (R,), None, "test", None),
        ("192.0.2.11-kdump-test-5f2c9a", (R,), "192.0.2.11", "test", None),
        # raw target and old SUSE local share a shape: both fit, the files decide
        ("2024-05-02-03:04", (R, SO), None, "raw", datetime(2024, 5, 2, 3, 4)),
        # SUSE >= 1.9: local and remote with a host name (which may hold dashes and dots)
        ("2024-05-02-03-04", (S,), None, "standard", datetime(2024, 5, 2, 3, 4)),
        ("web-01.example.com-2024-05-02-03-04", (S,), "web-01.example.com", "standard", None),
        # SUSE <= 1.8 remote: IP or "unknown"
        ("192.0.2.11-2024-05-02-03:04", (SO,), "192.0.2.11", "standard", datetime(2024, 5, 2, 3, 4)),
        ("unknown-2024-05-02-03:04", (SO,), None, "standard", None),
        # Debian/Ubuntu: local, IP, host name
        ("202405020304", (D,), None, "standard", datetime(2024, 5, 2, 3, 4)),
        ("192.0.2.11-202405020304", (D,), "192.0.2.11", "standard", None),
        ("db-7-202405020304", (D,), "db-7", "standard", None),
        ("[fd00::9]-202405020304", (D,), "fd00::9", "standard", None),
    ],
)
def test_every_name_form_is_recognised(name, families, identity, form, stamp) -> None:
    parsed = parse_dir_name(name)
    assert parsed is not None, name
    assert parsed.families == families
    assert parsed.identity == identity
    assert parsed.form == form
    if stamp is not None:
        assert parsed.stamp == stamp


@pytest.mark.parametrize(
    "name",
    [
        "kexec_cmd",  # Debian keeps these next to its dumps
        "kdump_lock",
        "lost+found",
        "README",
        "192.0.2.11",
        "2024-13-45-03:04:05",  # not a date
        "202413450304",
        "host-2024-05-02",
        ".snapshot",
    ],
)
def test_other_entries_are_not_dumps(name: str) -> None:
    assert parse_dir_name(name) is None


def test_layout_restricts_the_families() -> None:
    assert parse_dir_name("202405020304", families_for("rhel")) is None
    assert parse_dir_name("2024-05-02-03:04", families_for("suse")).families == (SO,)
    assert parse_dir_name("2024-05-02-03:04", families_for("rhel")).families == (R,)
    assert families_for("auto") == (R, S, SO, D)
    with pytest.raises(UsageError, match="unknown dump layout 'redhat'"):
        families_for("redhat")


def files(*entries: str | tuple[str, int]) -> dict[str, FileInfo]:
    out = {}
    for entry in entries:
        name, size = (entry, 10) if isinstance(entry, str) else entry
        out[name] = FileInfo(name, size)
    return out


def verdict(dirname: str, listing: dict[str, FileInfo], texts: dict[str, str] | None = None):
    parsed = parse_dir_name(dirname)
    assert parsed is not None
    return assess(parsed, listing, texts)


RHEL_DIR = "192.0.2.11-2024-05-02-03:04:05"


@pytest.mark.parametrize(
    ("listing", "status", "vmcore"),
    [
        (files(), "writing", None),
        (files("vmcore-dmesg-incomplete.txt"), "writing", None),
        (files("vmcore-dmesg.txt", "vmcore-incomplete"), "writing", "vmcore-incomplete"),
        (files("vmcore-dmesg.txt", "vmcore"), "complete", "vmcore"),
        (files("vmcore-dmesg.txt", "vmcore", "kexec-dmesg.log"), "complete", "vmcore"),
        (files("vmcore-dmesg.txt", "vmcore.flat", "kexec-dmesg.log"), "complete", "vmcore.flat"),
        # a vmcore next to a leftover vmcore-incomplete is not complete
        (files("vmcore", "vmcore-incomplete"), "writing", "vmcore-incomplete"),
        # kexec-dmesg.log is written on failure too
        (files("kexec-dmesg.log"), "failed", None),
        (files("vmcore-dmesg.txt", "vmcore-incomplete", "kexec-dmesg.log"), "failed", "vmcore-incomplete"),
    ],
)
def test_rhel_rules(listing, status, vmcore) -> None:
    result = verdict(RHEL_DIR, listing)
    assert (result.status, result.vmcore_name) == (status, vmcore)
    assert result.family is R


def test_rhel_dmesg_file_and_raw_target_settles() -> None:
    assert verdict(RHEL_DIR, files("vmcore-dmesg.txt", "vmcore-incomplete")).dmesg == "vmcore-dmesg.txt"
    raw = verdict("2024-05-02-03:04", files("vmcore"))
    assert (raw.status, raw.family, raw.settle) == ("complete", R, True)


SUSE_DIR = "web01-2024-05-02-03-04"
PLACEHOLDER = (
    "This dump is being saved. If you read this after a reboot, the crash dump is likely incomplete.\n"
)
DONE = (
    "Kernel crashdump\n----------------\nCrash time : 2024-05-02 03:04\n\nvmcore status: saved successfully\n"
)
FAILED = "Kernel crashdump\n----------------\nCrash time : 2024-05-02 03:04\n\nvmcore status: failed\n"


def test_suse_reads_only_its_readme() -> None:
    parsed = parse_dir_name(SUSE_DIR)
    assert texts_needed(parsed, files("README.txt", "dmesg", "vmcore")) == ("README.txt",)
    assert texts_needed(parse_dir_name(RHEL_DIR), files("README.txt")) == ()


@pytest.mark.parametrize(
    ("listing", "readme", "status"),
    [
        (files(), None, "writing"),
        (files("README.txt"), PLACEHOLDER, "writing"),
        (files("README.txt", "dmesg", "vmcore"), PLACEHOLDER, "writing"),
        (files("README.txt", "dmesg", "vmcore"), DONE, "complete"),
        (files("README.txt", "dmesg", "vmcore"), FAILED, "failed"),
        # caught while README.txt is being rewritten: no status line yet
        (files("README.txt", "dmesg", "vmcore"), "Kernel crashdump\n----", "writing"),
    ],
)
def test_suse_rules(listing, readme, status) -> None:
    texts = {"README.txt": readme} if readme is not None else {}
    result = verdict(SUSE_DIR, listing, texts)
    assert result.status == status
    assert result.family is S
    if status == "failed":
        assert "vmcore status: failed" in result.reason


@pytest.mark.parametrize(
    ("listing", "status", "vmcore"),
    [
        (files("dmesg.txt"), "writing", None),
        (files("dmesg.txt", "vmcore"), "writing", "vmcore"),
        (files("dmesg.txt", "vmcore", "README.txt"), "complete", "vmcore"),
        (files("dmesg.txt", "vmcore1", "vmcore2", "vmcore10", "README.txt"), "complete", "vmcore1"),
        # over ssh every file is written as <name>-incomplete and renamed
        (files("dmesg.txt", "vmcore-incomplete"), "writing", "vmcore-incomplete"),
        (files("dmesg.txt", "vmcore", "README.txt-incomplete"), "writing", "vmcore"),
    ],
)
def test_suse_old_rules(listing, status, vmcore) -> None:
    result = verdict("192.0.2.11-2024-05-02-03:04", listing)
    assert (result.status, result.vmcore_name, result.family) == (status, vmcore, SO)


def test_split_vmcore_counts_all_parts_in_order() -> None:
    result = verdict("192.0.2.11-2024-05-02-03:04", files("vmcore2", "vmcore10", "vmcore1", "README.txt"))
    assert result.vmcore == ("vmcore1", "vmcore2", "vmcore10")


def test_ambiguous_name_resolved_by_the_files() -> None:
    # RHEL raw and old SUSE local: dmesg.txt / README.txt are old SUSE's
    assert verdict("2024-05-02-03:04", files("dmesg.txt", "vmcore")).family is SO
    assert verdict("2024-05-02-03:04", files("dmesg.txt", "vmcore", "README.txt")).status == "complete"
    assert verdict("2024-05-02-03:04", files("vmcore")).family is R


DEB_DIR = "192.0.2.11-202405020304"


@pytest.mark.parametrize(
    ("listing", "status", "vmcore"),
    [
        (files("dmesg.202405020304"), "writing", None),
        (files("dmesg.202405020304", "dump-incomplete"), "writing", "dump-incomplete"),
        (files("dmesg.202405020304", "dump.202405020304"), "complete", "dump.202405020304"),
        (files("dmesg.202405020304", "dump-incomplete.gz"), "writing", "dump-incomplete.gz"),
        (files("dmesg.202405020304", "dump.202405020304.gz"), "complete", "dump.202405020304.gz"),
        (files("dump.202405020304.bz2"), "complete", "dump.202405020304.bz2"),
        (files("dump.202405020304.lz4"), "complete", "dump.202405020304.lz4"),
        (files("dump.202405020304.xz"), "complete", "dump.202405020304.xz"),
        # makedumpfile failed: kdump-config copies /proc/vmcore instead
        (files("dmesg.202405020304", "vmcore-incomplete"), "writing", "vmcore-incomplete"),
        (files("dmesg.202405020304", "vmcore.202405020304"), "complete", "vmcore.202405020304"),
        # nothing is complete while any *-incomplete file remains
        (files("dump.202405020304", "vmcore-incomplete"), "writing", "vmcore-incomplete"),
    ],
)
def test_debian_rules(listing, status, vmcore) -> None:
    result = verdict(DEB_DIR, listing)
    assert (result.status, result.vmcore_name, result.family) == (status, vmcore, D)


def test_debian_dmesg_file() -> None:
    assert verdict(DEB_DIR, files("dmesg.202405020304", "dump-incomplete")).dmesg == "dmesg.202405020304"
