"""``oob dump``'s new directory (:func:`oob.runbook.hvdump.make_dump_dir`) as the daemon's user
needs it, without the guest: run as root, it takes the owner and group of ``--dir`` (a
session libvirtd of ``nobody``, as in tests/vm, writes the file in it); otherwise it is
oob's own.  test_guest.py shows the same through a real libvirtd."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

import pytest

from oob.errors import SafetyRefusal
from oob.runbook.hvdump import make_dump_dir


def test_the_new_directory_belongs_to_whoever_owns_dir(tmp_path: Path) -> None:
    parent = tmp_path / "crash"
    parent.mkdir()
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(parent, nobody.pw_uid, nobody.pw_gid)
        expected = (nobody.pw_uid, nobody.pw_gid)
    else:
        expected = (os.geteuid(), os.stat(parent).st_gid)
    made = parent / "guest-2026-11-30-08:00:00"
    make_dump_dir(str(made), "guest")
    info = os.lstat(made)
    assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) & 0o027 == 0
    assert (info.st_uid, info.st_gid) == expected


def test_an_existing_directory_is_refused(tmp_path: Path) -> None:
    made = tmp_path / "guest-2026-11-30-08:00:00"
    made.mkdir()
    (made / "vmcore").write_bytes(b"evidence")
    with pytest.raises(SafetyRefusal, match="exists already"):
        make_dump_dir(str(made), "guest")
    assert (made / "vmcore").read_bytes() == b"evidence"
