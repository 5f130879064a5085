"""The hand-off to crash: the release from every real vmcore head, the distribution and its
debuginfo (paths checked against the packages' file lists, docs/ANALYSIS-HANDOFF.md), the
steps before crash for flattened, compressed and hypervisor dumps, and the command line."""

from __future__ import annotations

import gzip
import os
import shlex
import struct
from pathlib import Path

import pytest

from mocks.kdump import DumpSpec, image_stream
from oob.analysis.handoff import Family, build_handoff, debuginfo_for, guess_family, kernel_release
from oob.errors import DumpUnreadable
from oob.safetext import is_printable
from tests.dump.test_formats_release import elf64, note, prstatus, vmcoreinfo, xen_dump_core

DATA = Path(__file__).resolve().parent.parent / "data" / "kernel-logs"
CASES = ("hard", "oops", "rcustall", "softlockup", "sysrq")
DEBIAN_VMLINUX = "/usr/lib/debug/boot/vmlinux-6.1.0-50-amd64"


@pytest.mark.parametrize("case", CASES)
def test_every_real_vmcore_head(case: str) -> None:
    head = DATA / case / "vmcore.head"
    assert kernel_release(head) == ("6.1.0-50-amd64", "kdump-compressed header (utsname release)")
    assert kernel_release(head.read_bytes()) == kernel_release(head)
    handoff = build_handoff(head)
    assert (handoff.release, handoff.family, handoff.format) == (
        "6.1.0-50-amd64",
        Family.DEBIAN,
        "kdump-compressed (lzo)",
    )
    assert handoff.debuginfo is not None
    assert handoff.debuginfo.packages == ("linux-image-6.1.0-50-amd64-dbg",)
    assert handoff.debuginfo.install == "apt-get install linux-image-6.1.0-50-amd64-dbg"
    assert handoff.prepare == ()
    assert handoff.crash_command == f"crash {DEBIAN_VMLINUX} {head}"
    assert handoff.to_dict()["family"] == "debian"


@pytest.mark.parametrize(
    ("release", "family"),
    [
        ("5.14.0-427.13.1.el9_4.x86_64", Family.RHEL),
        ("4.18.0-553.el8_10.aarch64", Family.RHEL),
        ("6.11.4-301.fc41.x86_64", Family.FEDORA),
        ("5.15.0-208.159.3.el9uek.x86_64", Family.ORACLE_UEK),
        ("6.1.0-50-amd64", Family.DEBIAN),
        ("6.1.0-50-cloud-amd64", Family.DEBIAN),
        ("6.1.0-50-rt-arm64", Family.DEBIAN),
        ("6.12.38+deb13-amd64", Family.DEBIAN),
        ("6.8.0-45-generic", Family.UBUNTU),
        ("6.8.0-1015-aws", Family.UBUNTU),
        ("6.8.0-1015-azure", Family.UBUNTU),
        ("6.4.0-150600.23.25-default", Family.SUSE),
        ("6.4.0-150600.8.11-azure", Family.SUSE),
        ("6.17.1-1-default", Family.SUSE),
        ("6.6.1-arch1-1", Family.UNKNOWN),
        ("6.1.0", Family.UNKNOWN),
        (None, Family.UNKNOWN),
    ],
)
def test_family_from_the_release(release: str | None, family: Family) -> None:
    assert guess_family(release) is family


def test_debuginfo_of_each_family() -> None:
    rhel = debuginfo_for("5.14.0-427.13.1.el9_4.x86_64", Family.RHEL)
    assert rhel is not None
    assert rhel.packages == ("kernel-debuginfo-5.14.0-427.13.1.el9_4.x86_64",)
    assert rhel.namelist == "/usr/lib/debug/lib/modules/5.14.0-427.13.1.el9_4.x86_64/vmlinux"
    assert rhel.install == "dnf install kernel-debuginfo-5.14.0-427.13.1.el9_4.x86_64"
    fedora = debuginfo_for("6.11.4-301.fc41.x86_64", Family.FEDORA)
    assert fedora is not None
    assert fedora.install == "dnf '--enablerepo=*-debuginfo' install kernel-debuginfo-6.11.4-301.fc41.x86_64"
    uek = debuginfo_for("5.15.0-208.159.3.el9uek.x86_64", Family.ORACLE_UEK)
    assert uek is not None and uek.packages == ("kernel-uek-debuginfo-5.15.0-208.159.3.el9uek.x86_64",)
    ubuntu = debuginfo_for("6.8.0-45-generic", Family.UBUNTU)
    assert ubuntu is not None
    assert ubuntu.packages == (
        "linux-image-6.8.0-45-generic-dbgsym",
        "linux-image-unsigned-6.8.0-45-generic-dbgsym",
    )
    assert ubuntu.namelist == "/usr/lib/debug/boot/vmlinux-6.8.0-45-generic"
    assert ubuntu.install.count("apt-get install") == 2
    suse = debuginfo_for("6.4.0-150600.23.25-default", Family.SUSE)
    assert suse is not None
    assert suse.packages == ("kernel-default-debuginfo", "kernel-default-devel")
    assert suse.namelist == "/boot/vmlinux-6.4.0-150600.23.25-default.gz"
    assert suse.debug_files == ("/usr/lib/debug/boot/vmlinux-6.4.0-150600.23.25-default.debug",)
    debian = debuginfo_for("6.1.0-50-amd64", Family.DEBIAN)
    assert debian is not None
    assert debian.debug_files == (DEBIAN_VMLINUX, "/usr/lib/debug/vmlinux-6.1.0-50-amd64")
    assert debuginfo_for("6.6.1-arch1-1", Family.UNKNOWN) is None


def test_tumbleweed_vmlinux_is_xz_and_unpacked_first() -> None:
    handoff = build_handoff(release="6.17.1-1-default")
    assert handoff.debuginfo is not None and handoff.debuginfo.namelist == "/boot/vmlinux-6.17.1-1-default.xz"
    assert handoff.prepare == ("xz -dc /boot/vmlinux-6.17.1-1-default.xz > vmlinux-6.17.1-1-default",)
    # no dump file given: the command needs one, so none is made up
    assert handoff.crash_command is None


def test_flattened_dump_is_rebuilt_first(tmp_path: Path) -> None:
    spec = DumpSpec(size=64 * 1024, chunk=8 * 1024, kernel="5.14.0-427.13.1.el9_4.x86_64")
    flat = tmp_path / "vmcore.flat"
    flat.write_bytes(b"".join(image_stream(spec, "flattened", None)))
    handoff = build_handoff(flat)
    rebuilt = str(tmp_path / "vmcore")
    assert handoff.release_from == "flattened stream, kdump-compressed header (utsname release)"
    assert handoff.prepare == (f"makedumpfile -R {rebuilt} < {flat}",)
    assert (
        handoff.crash_command
        == f"crash /usr/lib/debug/lib/modules/5.14.0-427.13.1.el9_4.x86_64/vmlinux {rebuilt}"
    )
    # a stream cut short: said, and still rebuilt
    cut = tmp_path / "vmcore-cut"
    cut.write_bytes(flat.read_bytes()[:40_000])
    cut_handoff = build_handoff(cut)
    assert cut_handoff.prepare == (f"makedumpfile -R {tmp_path / 'vmcore-cut-rebuilt'} < {cut}",)
    assert any("no end marker" in n for n in cut_handoff.notes)


def test_compressed_debian_dump_is_unpacked_first(tmp_path: Path) -> None:
    packed = tmp_path / "dump.202405020310.gz"
    packed.write_bytes(gzip.compress((DATA / "oops" / "vmcore.head").read_bytes()))
    handoff = build_handoff(packed)
    target = str(tmp_path / "dump.202405020310")
    assert handoff.release == "6.1.0-50-amd64"
    assert handoff.release_from == "gzip-compressed, kdump-compressed header (utsname release)"
    assert handoff.prepare == (f"gzip -dc {packed} > {target}",)
    assert handoff.crash_command == f"crash {DEBIAN_VMLINUX} {target}"
    # a compressed flattened stream goes straight into makedumpfile -R
    spec = DumpSpec(size=64 * 1024, chunk=8 * 1024, kernel="6.1.0-50-amd64")
    stream = tmp_path / "dump.202405020311"
    stream.write_bytes(gzip.compress(b"".join(image_stream(spec, "flattened", None))))
    piped = build_handoff(stream)
    assert piped.prepare == (f"gzip -dc {stream} | makedumpfile -R {stream}-unpacked",)


def test_hypervisor_dumps(tmp_path: Path) -> None:
    xen = tmp_path / "guest.core"
    xen.write_bytes(xen_dump_core())
    handoff = build_handoff(xen, release="6.1.0-50-amd64")
    assert (handoff.producer, handoff.prepare) == ("xen", ())
    assert handoff.release_from == "kernel log"
    assert handoff.crash_command == f"crash {DEBIAN_VMLINUX} {xen}"
    assert any("xl dump-core" in n for n in handoff.notes)

    qemu = tmp_path / "guest.elf"
    qemu.write_bytes(
        elf64(
            (prstatus() + note(b"QEMU", 0, b"\0" * 432)) * 2
            + note(b"VMCOREINFO", 0, vmcoreinfo("6.8.0-45-generic"))
        )
    )
    from_dump = build_handoff(qemu, release="6.1.0-50-amd64")
    # the dump's own VMCOREINFO wins over what the caller believed
    assert (from_dump.release, from_dump.family, from_dump.producer) == (
        "6.8.0-45-generic",
        Family.UBUNTU,
        "qemu",
    )
    assert from_dump.crash_command == f"crash /usr/lib/debug/boot/vmlinux-6.8.0-45-generic {qemu}"

    bare = tmp_path / "bare.elf"
    bare.write_bytes(elf64(prstatus() + note(b"QEMU", 0, b"\0" * 432)))
    unknown = build_handoff(bare)
    assert unknown.release is None and unknown.crash_command is None
    assert any("does not name the guest's kernel" in n for n in unknown.notes)


@pytest.mark.parametrize("suffix", ["vmss", "vmsn"])
def test_vmware_suspend_and_snapshot_files(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"web01-1a2b.{suffix}"
    path.write_bytes(struct.pack("<III", 0xBED2BED2, 8, 3) + b"\0" * 4096)
    handoff = build_handoff(path, release="5.14.0-427.13.1.el9_4.x86_64")
    assert (handoff.format, handoff.producer, handoff.prepare) == ("vmware-vmss", "vmware", ())
    assert (
        handoff.crash_command
        == f"crash /usr/lib/debug/lib/modules/5.14.0-427.13.1.el9_4.x86_64/vmlinux {path}"
    )
    note_text = " ".join(handoff.notes)
    assert "crash 7.1.0 and later" in note_text and f"vmss2core -N6 {path}" in note_text


def test_vmlinux_present_and_quoting(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/lib/debug/boot").mkdir(parents=True)
    (root / DEBIAN_VMLINUX.lstrip("/")).write_bytes(b"\x7fELF")
    odd = tmp_path / "dumps of $HOST" / "it's here"
    odd.mkdir(parents=True)
    vmcore = odd / "dump.202405020310"
    vmcore.write_bytes((DATA / "sysrq" / "vmcore.head").read_bytes())
    handoff = build_handoff(vmcore, root=root)
    assert handoff.vmlinux_present == DEBIAN_VMLINUX
    assert handoff.crash_command is not None
    assert shlex.split(handoff.crash_command) == ["crash", DEBIAN_VMLINUX, str(vmcore)]
    assert build_handoff(vmcore, root=tmp_path / "empty").vmlinux_present is None


def test_hostile_names_and_releases(tmp_path: Path) -> None:
    evil = tmp_path / "dump\x1b]0;pwned\x07.202405020310"
    evil.write_bytes((DATA / "hard" / "vmcore.head").read_bytes())
    handoff = build_handoff(evil, release="6.1\x1b[2J")
    assert all(is_printable(line) for line in handoff.lines())
    # a release from the log that is not one is refused, not pasted into a command line
    nothing = build_handoff(release="6.1.0-50-amd64; rm -rf /")
    assert (nothing.release, nothing.family, nothing.debuginfo) == (None, Family.UNKNOWN, None)


def test_unreadable_dumps_are_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(DumpUnreadable, match="cannot read .*missing"):
        build_handoff(tmp_path / "missing")
    with pytest.raises(DumpUnreadable, match="is not a regular file"):
        kernel_release(tmp_path)
    fifo = tmp_path / "vmcore.fifo"
    os.mkfifo(fifo)
    # a FIFO where a dump should be: refused at once, the open does not wait for a writer
    with pytest.raises(DumpUnreadable, match="not a regular file"):
        build_handoff(fifo)
    empty = tmp_path / "vmcore"
    empty.write_bytes(b"")
    handoff = build_handoff(empty)
    assert handoff.release is None and any("not a dump format" in n for n in handoff.notes)


def test_virsh_dump_default_format(tmp_path: Path) -> None:
    path = tmp_path / "guest.save"
    path.write_bytes(b"QEVM\0\0\0\x03" + b"\0" * 4096)
    handoff = build_handoff(path, release="6.1.0-50-amd64")
    assert (handoff.format, handoff.producer) == ("qemu-savevm", "qemu")
    assert handoff.crash_command == f"crash {DEBIAN_VMLINUX} {path}"
    assert any("virsh dump --memory-only" in n for n in handoff.notes)
