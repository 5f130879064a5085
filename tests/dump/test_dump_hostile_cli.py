"""``oob watch`` as a real process against what hangs readers: an SFTP server that stops
answering (keepalives still fine), FIFOs named like dump files.  Each run ends by its
--timeout with the right state and exit code, and Ctrl-C ends it with a report (exit 130).
The bounds below are generous: they catch a hang, they measure nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mocks.host import ManualClock
from mocks.kdump import KdumpWriter
from mocks.sshd import SshServer

from .conftest import FIFO_SECRET, fast_spec
from .test_dump_cli import REPO, inventory

ADDRESS = "192.0.2.11"
#: a hang shows as this bound being hit; a healthy run takes a few seconds
GENEROUS = 60.0


@pytest.fixture(scope="module")
def stalling_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """Its SFTP server answers the baseline's listing (two READDIRs), then nothing."""
    server = SshServer.start(tmp_path_factory.mktemp("stalling-sshd"), sftp_stall_after_readdirs=2)
    try:
        yield server
    finally:
        server.stop()


def oob_watch(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, COLUMNS="200")
    env.pop("OOB_INVENTORY", None)
    return subprocess.Popen(
        [sys.executable, "-m", "oob", "watch", *args],
        cwd=REPO,
        env=env,
        text=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def ssh_args(server: SshServer, root: Path, inv: Path, timeout: str) -> list[str]:
    return [
        "web01",
        "-i",
        str(inv),
        "--target",
        server.url(root),
        "--since",
        "5m",
        "--json",
        "--known-hosts",
        str(server.known_hosts),
        "--ssh-key",
        str(server.client_key),
        "--timeout",
        timeout,
        "--interval",
        "0.1",
    ]


def lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GENEROUS
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


def finish(process: subprocess.Popen[str], what: str) -> tuple[int, str, str]:
    try:
        stdout, stderr = process.communicate(timeout=GENEROUS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError(f"oob watch did not end: {what}") from None
    return process.returncode, stdout, stderr


def interrupt(process: subprocess.Popen[str], signum: int = signal.SIGINT) -> tuple[int, str, str]:
    process.send_signal(signum)
    return finish(process, signal.Signals(signum).name)


@pytest.fixture
def web01(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "crash"
    root.mkdir()
    return root, inventory(tmp_path / "inv.toml", {"web01": (ADDRESS, f"file://{root}")})


# -- a dump server whose file system hangs ---------------------------------------------------


def test_stalled_sftp_server_ends_by_the_deadline(stalling_sshd: SshServer, web01: tuple[Path, Path]) -> None:
    root, inv = web01
    code, stdout, stderr = finish(oob_watch(*ssh_args(stalling_sshd, root, inv, "3s")), "its --timeout 3s")

    assert code == 5, stderr
    (last,) = lines(stdout)
    assert last["event"] == "timeout" and last["state"] == "timeout" and last["last_state"] == "waiting"
    where = f"{stalling_sshd.user}@127.0.0.1:{stalling_sshd.port}:{root}"
    assert f"last error: {where}: stalled: no answer to list within" in last["message"]
    assert f"warning: {where}: stalled: no answer to list" in stderr  # said as it happened
    assert "Traceback" not in stderr


def test_ctrl_c_during_a_stalled_sftp_call_reports_interrupted(
    stalling_sshd: SshServer, web01: tuple[Path, Path]
) -> None:
    root, inv = web01
    stalling_sshd.sftp_stalled_marker.unlink(missing_ok=True)
    proc = oob_watch(*ssh_args(stalling_sshd, root, inv, "10m"))
    wait_for(stalling_sshd.sftp_stalled, "the SFTP server stopped answering")
    time.sleep(0.3)  # oob is now waiting on it

    code, stdout, stderr = interrupt(proc)

    assert code == 130, stderr
    (last,) = lines(stdout)
    assert last["event"] == "dump_interrupted" and last["state"] == "interrupted"
    assert last["last_state"] == "waiting"
    where = f"{stalling_sshd.user}@127.0.0.1:{stalling_sshd.port}:{root}"
    assert f"waiting on list of {where} unanswered for" in last["message"]
    assert "Traceback" not in stderr


# -- FIFOs named like dump files (one fed forever, one with no writer at all) -----------------


def fifo_dump(root: Path, fifo: Callable[[Path], None]) -> Path:
    writer = KdumpWriter(root, fast_spec("rhel-nfs", identity=ADDRESS), clock=ManualClock())
    list(writer.steps())
    directory = writer.directory
    assert directory is not None
    for name in ("kexec-dmesg.log", "vmcore", "vmcore-dmesg.txt"):
        (directory / name).unlink()
    os.mkfifo(directory / "vmcore-dmesg.txt")  # opening it to read would wait for a writer forever
    fifo(directory / "vmcore-incomplete")  # a writer that never stops
    return directory


def test_fifo_dump_ends_by_the_deadline(web01: tuple[Path, Path], endless_fifo_writers) -> None:
    root, inv = web01
    directory = fifo_dump(root, endless_fifo_writers)
    proc = oob_watch(
        "web01",
        "-i",
        str(inv),
        "--target",
        f"file://{root}",
        "--since",
        "5m",
        "--json",
        "--timeout",
        "3s",
        "--interval",
        "0.1",
    )
    code, stdout, stderr = finish(proc, "its --timeout 3s")

    assert code == 5, stderr
    last = lines(stdout)[-1]
    assert last["event"] == "timeout" and last["directory"] == directory.name
    assert (
        "refused: vmcore-dmesg.txt (a FIFO, device or socket), vmcore-incomplete (a FIFO" in last["message"]
    )
    assert f"suspicious entry {directory}/vmcore-dmesg.txt: a FIFO, device or socket" in stderr
    assert FIFO_SECRET.decode() not in stdout + stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_ctrl_c_with_a_fifo_dump_reports_interrupted(
    web01: tuple[Path, Path], endless_fifo_writers, signum: int
) -> None:
    root, inv = web01
    directory = fifo_dump(root, endless_fifo_writers)
    proc = oob_watch(
        "web01",
        "-i",
        str(inv),
        "--target",
        f"file://{root}",
        "--since",
        "5m",
        "--json",
        "--timeout",
        "10m",
        "--interval",
        "0.1",
    )
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())  # the dump directory appeared: it is being followed
    assert first["event"] == "dump_dir_appeared"
    time.sleep(0.3)

    code, stdout, stderr = interrupt(proc, signum)

    assert code == 130, stderr
    last = lines(stdout)[-1]
    assert last["event"] == "dump_interrupted" and last["directory"] == directory.name
    assert last["message"].startswith("interrupted after ")
    assert "refused: vmcore-dmesg.txt (a FIFO, device or socket)" in last["message"]
