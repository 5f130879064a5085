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
    result = analyze("web01", "-i", str(inv), "--json")
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
