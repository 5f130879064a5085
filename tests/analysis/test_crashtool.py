"""crash in batch mode. The REAL crash (Debian's 8.0.2; `apt-get install crash`) is run on a
real vmcore head: there is no vmlinux, so it is "not run" and says what to install; with a
file that is no vmlinux it fails and its own words are reported. The success path, the
deadline and the output bound use small fake `crash` scripts: a real debug vmlinux is
hundreds of megabytes."""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path

import pytest

from oob.analysis.crashtool import BATCH_COMMANDS, CrashRunStatus, run_crash
from oob.analysis.extract import find_tool
from oob.analysis.handoff import build_handoff
from oob.safetext import is_printable

DATA = Path(__file__).resolve().parent.parent / "data" / "kernel-logs"

#: a crash stand-in: checks its arguments, prints each command of the -i file as crash would
#: answer it, and exits 0 after "quit"
FAKE_CRASH = r"""test "$1" = -s && test "$2" = -i || exit 9
test -f "$4" && test -f "$5" || exit 8
test -z "$(ls -A .)" -o "$(ls -A .)" = commands || exit 7
while read -r cmd; do
  case "$cmd" in
    quit) exit 0 ;;
    *) echo "crash> $cmd"; echo "PID: 0  TASK: ffffffff82a13940  CPU: 0  COMMAND: \"swapper/0\"" ;;
  esac
done < "$3"
exit 3
"""


def fake_crash(directory: Path, body: str = FAKE_CRASH) -> str:
    directory.mkdir(exist_ok=True)
    path = directory / "crash"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def dump_copy(tmp_path: Path, case: str = "hard") -> Path:
    path = tmp_path / "vmcore"
    path.write_bytes((DATA / case / "vmcore.head").read_bytes())
    return path


def test_real_crash_without_a_vmlinux_is_not_run(tmp_path: Path) -> None:
    assert find_tool("crash"), "crash must be installed (apt-get install crash)"
    vmcore = dump_copy(tmp_path)
    handoff = build_handoff(vmcore, root=tmp_path / "root")
    assert handoff.debuginfo is not None and handoff.vmlinux_present is None
    run = run_crash(
        vmcore,
        Path(handoff.debuginfo.namelist),
        tmp_path / "crash.txt",
        vmlinux_hint=handoff.debuginfo.install,
    )
    assert run.status is CrashRunStatus.NOT_RUN
    assert run.message == (
        "not run: no vmlinux with debug info at /usr/lib/debug/boot/vmlinux-6.1.0-50-amd64 "
        "(apt-get install linux-image-6.1.0-50-amd64-dbg)"
    )
    assert run.output is None and not (tmp_path / "crash.txt").exists()


def test_real_crash_fails_clearly_on_a_file_that_is_no_vmlinux(tmp_path: Path) -> None:
    vmcore = dump_copy(tmp_path, "oops")
    bogus = tmp_path / "vmlinux-6.1.0-50-amd64"
    bogus.write_bytes(b"not an ELF file at all\n" * 4)
    run = run_crash(vmcore, bogus, tmp_path / "crash.txt", timeout=120)
    assert run.status is CrashRunStatus.FAILED and run.returncode == 1
    assert (
        run.message
        == f"crash failed: crash: {bogus}: not a supported file format; its output is in {tmp_path / 'crash.txt'}"
    )
    assert run.output == tmp_path / "crash.txt"
    assert "not a supported file format" in run.output.read_text()
    assert run.command.startswith(f"{find_tool('crash')} -s -i COMMANDS {bogus} ")


def test_batch_run_with_a_fake_crash(tmp_path: Path) -> None:
    vmcore = dump_copy(tmp_path)
    vmlinux = tmp_path / "vmlinux"
    vmlinux.write_bytes(b"\x7fELF")
    run = run_crash(vmcore, vmlinux, tmp_path / "crash.txt", crash=fake_crash(tmp_path / "bin"))
    assert (run.status, run.returncode, run.truncated) == (CrashRunStatus.DONE, 0, False)
    output = (tmp_path / "crash.txt").read_text()
    assert [line[7:] for line in output.splitlines() if line.startswith("crash> ")] == list(
        BATCH_COMMANDS[:-1]
    )
    assert run.output_bytes == len(output.encode())
    assert stat.S_IMODE((tmp_path / "crash.txt").stat().st_mode) == 0o600
    assert shlex.split(run.command)[1:4] == ["-s", "-i", "COMMANDS"]
    assert run.to_dict()["status"] == "done"


def test_output_never_overwrites_and_never_follows_a_symlink(tmp_path: Path) -> None:
    vmcore = dump_copy(tmp_path)
    vmlinux = tmp_path / "vmlinux"
    vmlinux.write_bytes(b"\x7fELF")
    crash = fake_crash(tmp_path / "bin")
    existing = tmp_path / "crash.txt"
    existing.write_text("an earlier run\n")
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    (tmp_path / "crash-1.txt").symlink_to(victim)
    run = run_crash(vmcore, vmlinux, existing, crash=crash)
    assert run.output == tmp_path / "crash-2.txt"
    assert existing.read_text() == "an earlier run\n" and victim.read_text() == "keep me\n"
    # a symlinked directory is not followed either
    (tmp_path / "linked").symlink_to(tmp_path / "bin")
    refused = run_crash(vmcore, vmlinux, tmp_path / "linked" / "crash.txt", crash=crash)
    assert refused.status is CrashRunStatus.NOT_RUN and "cannot save crash's output" in refused.message


def test_deadline_and_output_bound(tmp_path: Path) -> None:
    vmcore = dump_copy(tmp_path)
    vmlinux = tmp_path / "vmlinux"
    vmlinux.write_bytes(b"\x7fELF")
    slow = fake_crash(tmp_path / "slow", 'echo "please wait..."\nsleep 300\n')
    run = run_crash(vmcore, vmlinux, tmp_path / "slow.txt", crash=slow, timeout=1)
    assert run.status is CrashRunStatus.TIMED_OUT and "within 1 s" in run.message
    assert (tmp_path / "slow.txt").read_text() == "please wait...\n"
    loud = fake_crash(tmp_path / "loud", 'exec yes "PID: 1  TASK: ffff  CPU: 0  COMMAND: \\"init\\""\n')
    cut = run_crash(vmcore, vmlinux, tmp_path / "loud.txt", crash=loud, max_bytes=64 * 1024, timeout=30)
    assert (cut.status, cut.truncated, cut.output_bytes) == (CrashRunStatus.DONE, True, 64 * 1024)
    assert (
        (tmp_path / "loud.txt")
        .read_text()
        .endswith(f"[oob: crash's output passed {64 * 1024} bytes; stopped]\n")
    )


def test_not_run_without_crash_or_a_readable_dump(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from oob.analysis import extract

    vmlinux = tmp_path / "vmlinux"
    vmlinux.write_bytes(b"\x7fELF")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(extract, "TOOL_DIRS", ())
    missing = run_crash(dump_copy(tmp_path), vmlinux, tmp_path / "out.txt")
    assert missing.status is CrashRunStatus.NOT_RUN
    assert missing.message.startswith("not run: crash is not installed (apt-get install crash")
    crash = fake_crash(tmp_path / "bin")
    flat = tmp_path / "vmcore.flat"
    flat.write_bytes((b"makedumpfile\0\0\0\0" + b"\0\0\0\0\0\0\0\x01" * 2).ljust(0x1000, b"\0"))
    refused = run_crash(flat, vmlinux, tmp_path / "out.txt", crash=crash)
    assert refused.status is CrashRunStatus.NOT_RUN and "makedumpfile -R" in refused.message
    gone = run_crash(tmp_path / "no-such-vmcore", vmlinux, tmp_path / "out.txt", crash=crash)
    assert gone.status is CrashRunStatus.NOT_RUN and "cannot read" in gone.message
    assert all(is_printable(r.message) for r in (missing, refused, gone))
    assert not os.path.exists(tmp_path / "out.txt")
