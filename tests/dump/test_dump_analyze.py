"""``oob analyze`` as a real process: dump directories on a local path, file:// and ssh://
(a real sshd on loopback), a log file, an inventory host's newest dump, and bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from mocks.sshd import SshServer
from tests.dump.test_dump_cli import REPO, finished_dump, inventory

LOGS = REPO / "tests" / "data" / "kernel-logs"


def analyze(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200")
    env.pop("OOB_INVENTORY", None)
    return subprocess.run(
        [sys.executable, "-m", "oob", "analyze", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
        input="",
        check=False,
    )


def real_dump(root: Path, kind: str, name: str = "192.0.2.11-2026-11-30-03:12:09") -> Path:
    """A RHEL-style dump directory holding one of the real crashes' log and vmcore head."""
    directory = root / name
    directory.mkdir(parents=True)
    shutil.copy(LOGS / kind / "vmcore-dmesg.txt", directory / "vmcore-dmesg.txt")
    shutil.copy(LOGS / kind / "vmcore.head", directory / "vmcore")
    return directory


def records(stdout: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in stdout.splitlines()]


def test_local_directory_and_log_file(tmp_path: Path) -> None:
    directory = real_dump(tmp_path, "softlockup")
    result = analyze(str(directory), str(LOGS / "oops" / "vmcore-dmesg.txt"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"{directory}: soft lockup in nmihang (high confidence)" in out
    assert "  vmcore:   " + str(directory / "vmcore") + ", kdump-compressed (lzo)" in out
    assert "  kernel:   6.1.0-50-amd64, tainted G OEL" in out
    assert "NULL dereference in nmihang (high confidence)" in out
    assert "with panic_on_oops the crash kernel starts before it is printed" in out


def test_json_result_per_dump(tmp_path: Path) -> None:
    directory = real_dump(tmp_path, "rcustall")
    result = analyze(directory.as_uri(), "--json")
    assert result.returncode == 0, result.stderr
    (record,) = records(result.stdout)
    assert record["event"] == "result" and record["status"] == "analysed"
    assert record["format"]["kernel"] == "6.1.0-50-amd64"
    verdict = record["analysis"]["verdict"]
    assert (verdict["kind"], verdict["cpu"], verdict["task"], verdict["culprit"]) == (
        "rcu_stall",
        1,
        "nmihang_rcu/1:128",
        "nmihang",
    )


def test_over_ssh(tmp_path: Path, sshd: SshServer) -> None:
    directory = real_dump(tmp_path / "crash", "hard")
    result = analyze(
        sshd.url(directory),
        "--json",
        "--known-hosts",
        str(sshd.known_hosts),
        "--ssh-key",
        str(sshd.client_key),
    )
    assert result.returncode == 0, result.stderr
    (record,) = records(result.stdout)
    assert record["analysis"]["verdict"]["kind"] == "hard_hang"
    assert record["location"].endswith(f":{directory}")
    assert record["format"]["kernel"] == "6.1.0-50-amd64"


def test_inventory_host_means_its_newest_dump(tmp_path: Path) -> None:
    crash = tmp_path / "crash"
    crash.mkdir()
    old = real_dump(crash, "oops", "192.0.2.11-2026-11-29-01:00:00")
    os.utime(old, (1_700_000_000, 1_700_000_000))
    real_dump(crash, "sysrq", "192.0.2.11-2026-11-30-03:12:09")
    real_dump(crash, "hard", "192.0.2.12-2026-11-30-03:12:10")  # another host's
    inv = inventory(
        tmp_path / "inv.toml",
        {"web01": ("192.0.2.11", crash.as_uri()), "web02": ("192.0.2.12", crash.as_uri())},
    )
    # the inventory's BMC is a documentation address: its event log is not read
    result = analyze("web01", "-i", str(inv), "--json", "--no-bmc-log")
    assert result.returncode == 0, result.stderr
    (record,) = records(result.stdout)
    assert record["host"] == "web01"
    assert record["location"].endswith("192.0.2.11-2026-11-30-03:12:09")
    assert record["analysis"]["verdict"]["kind"] == "sysrq_crash"


def test_a_dump_written_by_the_mock_kdump(tmp_path: Path) -> None:
    crash = tmp_path / "crash"
    crash.mkdir()
    writer = finished_dump(crash, "debian", "192.0.2.11", crash_time=datetime(2026, 11, 30, 3, 12))
    result = analyze(str(writer.directory), "--json")
    assert result.returncode == 0, result.stderr
    (record,) = records(result.stdout)
    assert record["analysis"]["source"].endswith("dmesg.202611300312")
    assert record["analysis"]["kernel"]["panic_reason"] == "NMI: Not continuing"


def test_no_log_and_no_extraction(tmp_path: Path) -> None:
    directory = tmp_path / "202611300312"
    directory.mkdir()
    shutil.copy(LOGS / "oops" / "vmcore.head", directory / "dump.202611300312")
    result = analyze(str(directory), "--no-extract")
    assert result.returncode == 5
    assert "kdump saved no kernel log beside the vmcore" in result.stdout
    assert "Traceback" not in result.stderr


def test_bad_subjects_one_line_each(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(LOGS / "hard")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result = analyze("no-such-host-or-file", str(link), str(fifo), "--json")
    assert result.returncode == 2
    messages = [r["message"] for r in records(result.stdout)]
    assert messages == [
        "no-such-host-or-file: no such file or directory, and no host of that name in the inventory",
        f"{link}: a symbolic link; name the dump directory itself",
        f"{fifo}: not a regular file",
    ]
    assert "Traceback" not in result.stderr


def test_binary_file_is_said_to_be_no_log(tmp_path: Path) -> None:
    noise = tmp_path / "noise.bin"
    noise.write_bytes(bytes(range(256)) * 64)
    result = analyze(str(noise), "--json")
    (record,) = records(result.stdout)
    assert record["analysis"]["notes"] == ["the file is not text (binary bytes): not a kernel log"]
    assert record["analysis"]["verdict"]["confidence"] == "none"


def test_control_characters_from_the_log_never_reach_the_terminal(tmp_path: Path) -> None:
    log = tmp_path / "vmcore-dmesg.txt"
    log.write_text(
        "[ 5.0] watchdog: BUG: soft lockup - CPU#0 stuck for 8s! [evil\x1b]0;x\x07:12]\n"
        "[ 5.0] CPU: 0 PID: 12 Comm: evil\x1b[2J Kdump: loaded Not tainted 6.1.0-18-amd64 #1\n"
        "[ 5.0] RIP: 0010:spin\x1b[31m+0x1/0x2 [mod\x07]\n"
        "[ 6.0] Kernel panic - not syncing: \x1b]52;c;cHduZWQ=\x07 softlockup: hung tasks\n"
    )
    result = analyze(str(log))
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "soft lockup" in result.stdout


def test_fetch_copies_a_remote_vmcore_once_and_never_overwrites(tmp_path: Path, sshd: SshServer) -> None:
    directory = tmp_path / "crash" / "192.0.2.11-2026-11-30-03:12:09"
    directory.mkdir(parents=True)
    vmcore = (LOGS / "oops" / "vmcore.head").read_bytes()
    (directory / "vmcore").write_bytes(vmcore)
    ssh = ["--known-hosts", str(sshd.known_hosts), "--ssh-key", str(sshd.client_key), "--json"]
    without = analyze(sshd.url(directory), *ssh)
    assert without.returncode == 5
    assert "not copied without --fetch" in records(without.stdout)[0]["message"]
    here = tmp_path / "here"
    fetched = here / directory.name / "vmcore"
    first = analyze(sshd.url(directory), "--fetch", "--fetch-dir", str(here), *ssh)
    assert fetched.read_bytes() == vmcore
    (record,) = records(first.stdout)
    assert record["fetched"] == str(fetched)
    # the copy is a cut-short dump: makedumpfile (or its absence) says so in one line
    assert record["status"] == "no_log" and first.returncode == 5
    assert "\n" not in record["message"]
    assert not list(here.rglob("*.part"))
    # a second run uses the copy; a file of another size there is never overwritten
    again = analyze(sshd.url(directory), "--fetch", "--fetch-dir", str(here), *ssh)
    assert records(again.stdout)[0]["fetched"] == str(fetched)
    fetched.write_bytes(b"mine")
    refused = analyze(sshd.url(directory), "--fetch", "--fetch-dir", str(here), *ssh)
    assert "not overwritten" in records(refused.stdout)[0]["message"]
    assert fetched.read_bytes() == b"mine"


def test_hand_off_to_crash_local_and_remote(tmp_path: Path, sshd: SshServer) -> None:
    directory = real_dump(tmp_path / "crash", "oops")
    local = analyze(str(directory), "--json", "--crash", "--crash-dir", str(tmp_path / "out"))
    (record,) = records(local.stdout)
    crash = record["analysis"]["crash"]
    assert crash["release"] == "6.1.0-50-amd64" and crash["family"] == "debian"
    assert (
        crash["crash_command"] == f"crash /usr/lib/debug/boot/vmlinux-6.1.0-50-amd64 {directory / 'vmcore'}"
    )
    # no vmlinux with debug info on this machine: crash is not run, and says what to install
    assert record["crash_run"]["status"] == "not_run"
    assert "linux-image-6.1.0-50-amd64-dbg" in record["crash_run"]["message"]
    remote = analyze(
        sshd.url(directory),
        "--json",
        "--known-hosts",
        str(sshd.known_hosts),
        "--ssh-key",
        str(sshd.client_key),
    )
    (record,) = records(remote.stdout)
    crash = record["analysis"]["crash"]
    assert crash["release"] == "6.1.0-50-amd64"
    assert crash["notes"][0].startswith("the dump is on ") and "--fetch" in crash["notes"][0]


def test_a_log_alone_still_names_the_vmlinux_to_install() -> None:
    result = analyze(str(LOGS / "hard" / "vmcore-dmesg.txt"))
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert (
        "vmlinux: /usr/lib/debug/boot/vmlinux-6.1.0-50-amd64; install: apt-get install linux-image-6.1.0-50-amd64-dbg"
        in lines
    )
