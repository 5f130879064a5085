"""``oob watch`` as a real process: JSON event lines, exit codes 0/5/2, --timeout, host keys,
and the live progress display on a terminal."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mocks.host import ManualClock
from mocks.kdump import KdumpWriter
from mocks.sshd import SshServer
from oob.cli.dumpopts import parse_duration, parse_since
from oob.errors import UsageError

from .conftest import fast_spec

REPO = Path(__file__).resolve().parents[2]


class Result:
    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.code, self.stdout, self.stderr = code, stdout, stderr

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def events(self, host: str) -> list[str]:
        return [line["event"] for line in self.lines if line.get("host") == host]

    def last(self, host: str) -> dict[str, Any]:
        return [line for line in self.lines if line.get("host") == host][-1]


def watch(*args: str, stderr_tty: bool = False, timeout: float = 60) -> Result:
    argv = [sys.executable, "-m", "oob", "watch", *args]
    env = dict(os.environ, COLUMNS="200")
    env.pop("OOB_INVENTORY", None)
    if not stderr_tty:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env, input="", check=False
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)
    master, slave = pty.openpty()
    try:
        popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, text=True, cwd=REPO, env=env
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the terminal closed: the process is gone
                break
            if not data:
                break
            chunks.append(data)
        stdout, _ = popen.communicate(timeout=timeout)
    finally:
        os.close(master)
    return Result(popen.returncode, stdout, b"".join(chunks).decode(errors="replace"))


def inventory(path: Path, hosts: dict[str, tuple[str, str]]) -> Path:
    """hosts: name -> (address, dump target)."""
    text = '[defaults]\nbmc.password = "env:OOB_TEST_UNUSED"\n'
    for index, (name, (address, target)) in enumerate(hosts.items()):
        text += textwrap.dedent(f"""
            [hosts.{name}]
            address = "{address}"
            bmc.address = "192.0.2.{200 + index}"
            dump.target = "{target}"
        """)
    path.write_text(text)
    path.chmod(0o600)
    return path


def finished_dump(root: Path, layout: str, identity: str, **kwargs: Any) -> KdumpWriter:
    """A dump kdump has already written (the NMI went out a moment ago)."""
    writer = KdumpWriter(root, fast_spec(layout, identity=identity, **kwargs), clock=ManualClock())
    list(writer.steps())
    return writer


def old_dump(root: Path, identity: str) -> str:
    writer = finished_dump(root, "rhel-nfs", identity, crash_time=datetime(2023, 1, 1, 1, 1, 1))
    an_hour_ago = time.time() - 3600
    os.utime(writer.directory, (an_hour_ago, an_hour_ago))
    return writer.directory.name


@pytest.fixture
def crash(tmp_path: Path) -> Path:
    root = tmp_path / "crash"
    root.mkdir()
    return root


def test_json_events_and_exit_0(tmp_path: Path, crash: Path) -> None:
    old = old_dump(crash, "192.0.2.11")
    writer = finished_dump(crash, "rhel-nfs", "192.0.2.11")
    inv = inventory(tmp_path / "inv.toml", {"web01": ("192.0.2.11", f"file://{crash}")})
    result = watch("web01", "-i", str(inv), "--since", "5m", "--json", "--interval", "0.05")
    assert result.code == 0, result.stderr
    assert result.events("web01") == ["dump_dir_appeared", "dump_complete"]
    done = result.last("web01")
    assert done["state"] == "complete" and done["directory"] == writer.directory.name
    assert done["path"] == str(writer.directory) and done["size"] == writer.final_path.stat().st_size
    assert done["format"]["kind"] == "kdump-compressed"
    assert done["panic"][-1] == "Kernel panic - not syncing: NMI: Not continuing"
    assert old not in result.stdout
    assert result.stderr == ""


def test_stalled_failed_and_timeout_exit_5(tmp_path: Path, crash: Path) -> None:
    finished_dump(crash, "rhel-nfs", "192.0.2.11")
    finished_dump(crash, "rhel-ssh", "192.0.2.12", fault="stall")
    finished_dump(crash, "rhel-nfs", "192.0.2.13", fault="disk_full")
    inv = inventory(
        tmp_path / "inv.toml",
        {
            "ok": ("192.0.2.11", f"file://{crash}"),
            "stuck": ("192.0.2.12", f"file://{crash}"),
            "full": ("192.0.2.13", f"file://{crash}"),
            "silent": ("192.0.2.14", f"file://{crash}"),
        },
    )
    started = time.monotonic()
    result = watch(
        "all",
        "-i",
        str(inv),
        "--since",
        "5m",
        "--json",
        "--interval",
        "0.05",
        "--stall-after",
        "0.3",
        "--timeout",
        "1.5s",
    )
    assert time.monotonic() - started < 20
    assert result.code == 5, result.stderr
    assert result.events("ok")[-1] == "dump_complete"
    assert result.events("stuck") == ["dump_dir_appeared", "dump_progress", "dump_stalled"]
    assert result.last("stuck")["state"] == "stalled"
    assert result.events("full") == ["dump_dir_appeared", "dump_failed"]
    failed = result.last("full")
    assert "saving the vmcore failed" in failed["message"]
    assert "carries makedumpfile's incomplete flag" in failed["message"]
    assert "kdump: saving vmcore failed, exitcode:1" in failed["details"]
    assert result.events("silent") == ["timeout"]
    assert "no new dump directory" in result.last("silent")["message"]
    for line in result.lines:
        assert line["event"] in {
            "dump_dir_appeared",
            "dump_progress",
            "dump_complete",
            "dump_stalled",
            "dump_failed",
            "timeout",
        }


def test_a_stall_ends_the_watch_before_its_timeout(tmp_path: Path, crash: Path) -> None:
    writer = finished_dump(crash, "rhel-ssh", "192.0.2.12", fault="stall")
    inv = inventory(tmp_path / "inv.toml", {"stuck": ("192.0.2.12", f"file://{crash}")})
    # --timeout 10m: only the stall can end this watch within the subprocess's 60 s
    args = ("stuck", "-i", str(inv), "--since", "5m", "--json", "--interval", "0.05", "--timeout", "10m")
    result = watch(*args, "--stall-after", "0.3")
    assert result.code == 5, result.stderr
    assert result.events("stuck") == ["dump_dir_appeared", "dump_progress", "dump_stalled"]
    stalled = result.last("stuck")
    assert stalled["state"] == "stalled" and stalled["directory"] == writer.directory.name
    assert stalled["file"] == "vmcore-incomplete" and stalled["bytes"] > 0
    assert "stopped waiting after --stall-after 0.3 s" in stalled["message"]


def test_stall_grace_keeps_waiting(tmp_path: Path, crash: Path) -> None:
    finished_dump(crash, "rhel-ssh", "192.0.2.12", fault="stall")
    inv = inventory(tmp_path / "inv.toml", {"stuck": ("192.0.2.12", f"file://{crash}")})
    args = ("stuck", "-i", str(inv), "--since", "5m", "--json", "--interval", "0.05", "--stall-after", "0.3")
    result = watch(*args, "--stall-grace", "1h", "--timeout", "1.5s")
    assert result.code == 5, result.stderr
    # stalled, said at once, and waited for until the deadline
    assert result.events("stuck") == ["dump_dir_appeared", "dump_progress", "dump_stalled", "timeout"]
    warned = next(line for line in result.lines if line["event"] == "dump_stalled")
    assert warned["level"] == "warning" and warned["grace"] == 3600
    assert result.last("stuck")["last_state"] == "stalled"
    bad = watch(*args, "--stall-grace", "a while")
    assert bad.code == 2 and "--stall-grace: 'a while' is not a duration" in bad.stderr


def test_the_newest_of_several_new_dumps_is_followed(tmp_path: Path, crash: Path) -> None:
    # two crashes since --since: an earlier dump that stalled, then this one
    earlier = finished_dump(
        crash, "rhel-nfs", "192.0.2.11", crash_time=datetime(2024, 5, 2, 3, 0), fault="stall"
    )
    four_minutes_ago = time.time() - 240
    os.utime(earlier.directory, (four_minutes_ago, four_minutes_ago))
    newest = finished_dump(crash, "rhel-nfs", "192.0.2.11", crash_time=datetime(2024, 5, 2, 3, 5))
    inv = inventory(tmp_path / "inv.toml", {"web01": ("192.0.2.11", f"file://{crash}")})
    result = watch("web01", "-i", str(inv), "--since", "10m", "--json", "--interval", "0.05")
    assert result.code == 0, result.stderr
    assert result.events("web01") == ["dump_dir_appeared", "dump_dirs_skipped", "dump_complete"]
    assert result.last("web01")["directory"] == newest.directory.name
    # --json: the warning is a JSON line of its own (dump_dirs_skipped)
    [skipped] = [json.loads(line) for line in result.stdout.splitlines() if "dump_dirs_skipped" in line]
    assert skipped["message"].startswith("2 new dump directories for this host")
    assert (
        f"following the newest, {newest.directory.name}; not following {earlier.directory.name}"
        in skipped["message"]
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((), "--since TIME"),
        (("--since", "5m", "--baseline", "now"), "exclude each other"),
        (("--baseline", "later"), "only 'now'"),
        (("--since", "tomorrow"), "neither a time"),
        (("--baseline", "now", "--timeout", "soon"), "not a duration"),
        (("--baseline", "now", "--target", "ftp://x/y"), "dump target 'ftp://x/y'"),
        (("--baseline", "now", "--layout", "windows"), "unknown dump layout"),
    ],
)
def test_bad_input_exits_2(tmp_path: Path, crash: Path, args: tuple[str, ...], words: str) -> None:
    inv = inventory(tmp_path / "inv.toml", {"web01": ("192.0.2.11", f"file://{crash}")})
    result = watch("web01", "-i", str(inv), *args)
    assert result.code == 2, (result.stdout, result.stderr)
    assert words in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_unknown_host_and_missing_target_exit_2(tmp_path: Path, crash: Path) -> None:
    inv = inventory(tmp_path / "inv.toml", {"web01": ("192.0.2.11", f"file://{crash}")})
    assert watch("nosuch", "-i", str(inv), "--baseline", "now").code == 2
    text = inv.read_text().replace(f'dump.target = "file://{crash}"\n', "")
    inv.write_text(text)
    result = watch("web01", "-i", str(inv), "--baseline", "now")
    assert result.code == 2 and "no dump.target" in result.stderr


def test_unknown_host_key_then_accepted(tmp_path: Path, crash: Path, sshd: SshServer) -> None:
    finished_dump(crash, "rhel-ssh", "192.0.2.11")
    known = tmp_path / "known_hosts"
    known.write_text("")
    inv = inventory(tmp_path / "inv.toml", {"web01": ("192.0.2.11", sshd.url(crash))})
    common = [
        "web01",
        "-i",
        str(inv),
        "--since",
        "5m",
        "--json",
        "--interval",
        "0.05",
        "--known-hosts",
        str(known),
        "--ssh-key",
        str(sshd.client_key),
    ]
    refused = watch(*common)
    assert refused.code == 5
    assert refused.stdout == ""
    assert refused.stderr.startswith("oob: error: ssh 127.0.0.1:") and "host key unknown" in refused.stderr
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    accepted = watch(*common, "--accept-new-host-key")
    assert accepted.code == 0, accepted.stderr
    assert accepted.last("web01")["event"] == "dump_complete"
    assert accepted.last("web01")["format"]["kind"] == "flattened"
    assert sshd.host_key in known.read_text()


def test_console_summary_without_a_terminal(tmp_path: Path, crash: Path) -> None:
    writer = finished_dump(crash, "suse", "web01")
    inv = inventory(tmp_path / "inv.toml", {"web01": ("192.0.2.11", f"file://{crash}")})
    result = watch("web01", "-i", str(inv), "--since", "5m", "--interval", "0.05")
    assert result.code == 0, result.stderr
    assert "dump directory appeared" in result.stderr and "dump complete" in result.stderr
    assert "Kernel panic - not syncing: NMI: Not continuing" in result.stderr
    assert "HOST" in result.stdout and "complete" in result.stdout
    assert writer.directory.name in result.stdout


def test_live_progress_on_a_terminal(tmp_path: Path, crash: Path) -> None:
    finished_dump(crash, "debian", "192.0.2.11")
    inv = inventory(
        tmp_path / "inv.toml",
        {"web01": ("192.0.2.11", f"file://{crash}"), "web02": ("192.0.2.12", f"file://{crash}")},
    )
    result = watch(
        "web01",
        "web02",
        "-i",
        str(inv),
        "--since",
        "5m",
        "--interval",
        "0.05",
        "--timeout",
        "1",
        stderr_tty=True,
    )
    assert result.code == 5
    assert "\x1b[" in result.stderr  # rich drew on the terminal
    assert "web01" in result.stderr and "complete" in result.stderr and "timeout" in result.stderr


def test_durations_and_times() -> None:
    assert parse_duration("90", "--x") == 90
    assert parse_duration("90s", "--x") == 90
    assert parse_duration("15m", "--x") == 900
    assert parse_duration("1h30m", "--x") == 5400
    assert parse_duration("0.5", "--x") == 0.5
    for bad in ("", "m", "soon", "-5", "5d"):
        with pytest.raises(UsageError):
            parse_duration(bad, "--x")
    now = datetime(2024, 5, 2, 3, 30).astimezone()
    assert parse_since("15m", now) == (now - timedelta(minutes=15)).timestamp()
    assert parse_since("03:10", now) == now.replace(minute=10).timestamp()
    assert parse_since("2024-05-02T03:00", now) == now.replace(minute=0).timestamp()
    assert (
        parse_since("2024-05-02T01:00+00:00", now)
        == datetime.fromisoformat("2024-05-02T01:00+00:00").timestamp()
    )
    with pytest.raises(UsageError, match="in the future"):
        parse_since("2024-05-03T00:00", now)
