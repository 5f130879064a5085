"""The kernel log out of a local vmcore with makedumpfile --dump-dmesg.

The REAL makedumpfile (Debian's 1.7.2; `apt-get install makedumpfile`) reads the real
vmcore heads: they are the first 64 KiB of real dumps, so it must fail, in one clear line.
The success path, the deadline and the output bound use small fake `makedumpfile` scripts
put first on PATH: a real dump that extracts is gigabytes, too big for the repository."""

from __future__ import annotations

import gzip
import os
import stat
import time
from pathlib import Path

import pytest

from mocks.kdump import DumpSpec, image_stream
from oob.analysis import extract
from oob.analysis.extract import extract_dmesg, find_tool
from oob.errors import DumpUnreadable
from oob.safetext import is_printable

DATA = Path(__file__).resolve().parent.parent / "data" / "kernel-logs"
CASES = ("hard", "oops", "rcustall", "softlockup", "sysrq")


def fake_tool(bin_dir: Path, name: str, body: str) -> Path:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def fake_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    return bin_dir


def dump_copy(tmp_path: Path, case: str) -> Path:
    path = tmp_path / f"dump.{case}"
    path.write_bytes((DATA / case / "vmcore.head").read_bytes())
    return path


@pytest.mark.parametrize("case", CASES)
def test_real_makedumpfile_on_a_truncated_real_dump(tmp_path: Path, case: str) -> None:
    assert find_tool("makedumpfile"), "makedumpfile must be installed (apt-get install makedumpfile)"
    vmcore = dump_copy(tmp_path, case)
    with pytest.raises(DumpUnreadable) as caught:
        extract_dmesg(vmcore, timeout=60)
    message = str(caught.value)
    assert message.startswith(f"makedumpfile could not read the kernel log of {vmcore}: ")
    assert "\n" not in message and caught.value.exit_code == 5
    # makedumpfile's own reason, not a generic one
    assert "exited with status" not in message


def test_formats_makedumpfile_does_not_take_are_refused_before_running(tmp_path: Path) -> None:
    spec = DumpSpec(size=64 * 1024, chunk=8 * 1024)
    flat = tmp_path / "vmcore.flat"
    flat.write_bytes(b"".join(image_stream(spec, "flattened", None)))
    with pytest.raises(DumpUnreadable, match=r"flattened makedumpfile stream.*makedumpfile -R OUTFILE <"):
        extract_dmesg(flat)
    packed = tmp_path / "dump.202405020310"
    packed.write_bytes(gzip.compress((DATA / "hard" / "vmcore.head").read_bytes()))
    with pytest.raises(DumpUnreadable, match=r"gzip-compressed: unpack it first \(gzip -dc "):
        extract_dmesg(packed)
    empty = tmp_path / "vmcore"
    empty.write_bytes(b"")
    with pytest.raises(DumpUnreadable, match="is empty"):
        extract_dmesg(empty)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(DumpUnreadable, match="not a regular file"):
        extract_dmesg(fifo)


def test_success_with_a_fake_makedumpfile(tmp_path: Path, fake_path: Path) -> None:
    # makedumpfile --dump-dmesg VMCORE LOGFILE: $2 is the dump, $3 the log to write
    fake_tool(
        fake_path,
        "makedumpfile",
        'test "$1" = --dump-dmesg || exit 9\nhead -c 64 "$2" > /dev/null\n'
        'printf "[    0.000000] Linux version 6.1.0-50-amd64\\n[   42.1] Kernel panic - not syncing: NMI\\n" > "$3"\n',
    )
    vmcore = dump_copy(tmp_path, "hard")
    log = extract_dmesg(vmcore)
    assert log.text.splitlines()[1] == "[   42.1] Kernel panic - not syncing: NMI"
    assert log.source == f"makedumpfile --dump-dmesg {vmcore}"
    assert (log.truncated, log.size) == (False, len(log.text))
    assert log.to_dict()["truncated"] is False


def test_only_the_end_of_a_big_log_is_kept(tmp_path: Path, fake_path: Path) -> None:
    fake_tool(
        fake_path,
        "makedumpfile",
        'i=0\nwhile [ $i -lt 2000 ]; do echo "[ $i.0] line $i"; i=$((i+1)); done > "$3"\n',
    )
    log = extract_dmesg(dump_copy(tmp_path, "oops"), max_bytes=1000)
    assert log.truncated and log.size > 1000 and len(log.text) == 1000
    assert log.text.endswith("[ 1999.0] line 1999\n")


def test_a_makedumpfile_that_hangs_is_stopped_with_its_children(tmp_path: Path, fake_path: Path) -> None:
    pids = tmp_path / "pids"
    fake_tool(fake_path, "makedumpfile", f"sleep 300 &\necho $! > {pids}\nwait\n")
    with pytest.raises(DumpUnreadable, match=r"did not finish .* within 1 s \(stopped\)"):
        extract_dmesg(dump_copy(tmp_path, "hard"), timeout=1)
    child = int(pids.read_text())
    # the whole process group was killed: the sleep started by the script is gone too
    for _ in range(100):
        if not _alive(child):
            break
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_a_makedumpfile_that_writes_without_end_is_stopped(
    tmp_path: Path, fake_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(extract, "HARD_LIMIT", 1 << 20)
    fake_tool(fake_path, "makedumpfile", 'exec yes "[    1.0] spam" > "$3"\n')
    with pytest.raises(DumpUnreadable, match="wrote more than 1 MiB"):
        extract_dmesg(dump_copy(tmp_path, "hard"), timeout=30)


def test_failure_words_are_made_printable(tmp_path: Path, fake_path: Path) -> None:
    fake_tool(
        fake_path,
        "makedumpfile",
        'printf "readmem: \\033]0;owned\\007bad page\\n\\nmakedumpfile Failed.\\n" >&2\nexit 1\n',
    )
    with pytest.raises(DumpUnreadable) as caught:
        extract_dmesg(dump_copy(tmp_path, "sysrq"))
    assert "readmem: \\x1b]0;owned\\x07bad page" in str(caught.value)
    assert is_printable(str(caught.value))


def test_missing_makedumpfile(tmp_path: Path, fake_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(fake_path))
    monkeypatch.setattr(extract, "TOOL_DIRS", ())
    with pytest.raises(DumpUnreadable, match=r"makedumpfile is not installed \(apt-get install makedumpfile"):
        extract_dmesg(dump_copy(tmp_path, "hard"))
