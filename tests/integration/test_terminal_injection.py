"""End to end: a crashed host's hostile dump directory names and panic lines never reach
the operator's terminal raw.

A real ``python -m oob watch`` follows a file:// dump target where the crashed host wrote a
RHEL dump whose directory name and vmcore-dmesg.txt panic line carry ESC sequences (a window
title, a screen clear, a cursor move, a CSI as one C1 byte, BEL, CR), next to a Debian-form
directory whose host part is one.  The console shows them escaped; ``--json`` gives them back
exactly; on a pseudo-terminal none of the host's sequences is among rich's own.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from mocks.host import ManualClock
from mocks.kdump import DumpSpec, KdumpWriter
from tests.conftest import REPO, CliResult

TITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J"
#: a ``kdumpctl test`` directory in RHEL's local form: attributed to the one watched host
DIRECTORY = f"127.0.0.1-kdump-test-{TITLE}{CLEAR}\rX"
#: a Debian-form directory naming no watched host: reported as unattributed
STRANGER = f"{CLEAR}{TITLE}evil-202405020310"
PANIC = f"Kernel panic - not syncing: NMI: Not continuing {TITLE}\x9b6n\x1b[1A[bold red]x[/]"
ESCAPED_DIRECTORY = "127.0.0.1-kdump-test-\\x1b]0;pwned\\x07\\x1b[2J\\x0dX"
ESCAPED_PANIC = (
    "Kernel panic - not syncing: NMI: Not continuing \\x1b]0;pwned\\x07\\x9b6n\\x1b[1A[bold red]x[/]"
)


@pytest.fixture
def hostile_target(tmp_path: Path) -> Path:
    """A file:// dump target holding one complete RHEL dump with a hostile name and log."""
    root = tmp_path / "crash"
    root.mkdir()
    spec = DumpSpec(
        layout="rhel-local",
        hostname="web01",
        size=96 * 1024,
        chunk=16 * 1024,
        rate=2e6,
        boot_delay=0.0,
        dmesg_delay=0.0,
    )
    writer = KdumpWriter(root, spec, clock=ManualClock())
    list(writer.steps())
    assert writer.directory is not None
    dmesg = writer.directory / "vmcore-dmesg.txt"
    log = dmesg.read_text()
    assert "Kernel panic - not syncing: NMI: Not continuing\n" in log
    dmesg.write_text(log.replace("Kernel panic - not syncing: NMI: Not continuing\n", PANIC + "\n"))
    writer.directory.rename(root / DIRECTORY)
    (root / STRANGER).mkdir()
    (root / STRANGER / "dmesg.202405020310").write_text(f"hello {TITLE}\n")
    return root


def inventory(path: Path) -> Path:
    path.write_text(
        textwrap.dedent("""
        [defaults]
        bmc.password = "env:OOB_TEST_UNUSED"

        [hosts.web01]
        address = "192.0.2.11"
        bmc.address = "192.0.2.201"
        dump.target = "file:///nonexistent"
    """)
    )
    path.chmod(0o600)
    return path


def watch_args(tmp_path: Path, target: Path, *extra: str) -> list[str]:
    return [
        "watch",
        "web01",
        "-i",
        str(inventory(tmp_path / "inv.toml")),
        "--target",
        f"file://{target}",
        "--since",
        "10m",
        "--interval",
        "0.05",
        "--timeout",
        "30s",
        *extra,
    ]


def assert_no_raw_control(text: str) -> None:
    for char in ("\x1b", "\x9b", "\r", "\x07"):
        assert char not in text, f"raw {char!r} reached the console: {text!r}"


def test_console_shows_hostile_names_and_panic_lines_escaped(
    oob: Callable[..., CliResult], tmp_path: Path, hostile_target: Path
) -> None:
    result = oob(*watch_args(tmp_path, hostile_target))
    assert result.code == 0, result.stderr
    # no terminal: rich writes no styling of its own, so no ESC at all may appear
    assert_no_raw_control(result.stderr)
    assert_no_raw_control(result.stdout)
    assert f"dump directory appeared: {hostile_target}/{ESCAPED_DIRECTORY}" in result.stderr
    assert ESCAPED_PANIC in result.stderr
    assert "new dump directory \\x1b[2J\\x1b]0;pwned\\x07evil-202405020310" in result.stderr
    # the summary table on stdout
    assert ESCAPED_DIRECTORY in result.stdout and ESCAPED_PANIC in result.stdout


def test_json_output_gives_the_names_back_exactly(
    oob: Callable[..., CliResult], tmp_path: Path, hostile_target: Path
) -> None:
    result = oob(*watch_args(tmp_path, hostile_target, "--json"))
    assert result.code == 0, result.stderr
    assert_no_raw_control(result.stderr)
    assert_no_raw_control(result.stdout)
    assert "\\x1b[2J\\x1b]0;pwned\\x07evil-202405020310" in result.stderr
    records = result.records
    complete = next(r for r in records if r["event"] == "dump_complete")
    assert complete["directory"] == DIRECTORY
    assert complete["path"] == str(hostile_target / DIRECTORY)
    assert complete["panic"][-1] == PANIC


def test_live_progress_on_a_terminal_carries_none_of_the_host_sequences(
    tmp_path: Path, hostile_target: Path, audit_path: Path
) -> None:
    """stderr on a pseudo-terminal: rich draws progress bars with its own cursor codes and
    colours; the host's window title, screen clear and bell must not be among them."""
    env = dict(os.environ, COLUMNS="250", OOB_AUDIT_LOG=str(audit_path))
    env.pop("OOB_INVENTORY", None)
    env.pop("NO_COLOR", None)
    master, slave = pty.openpty()
    try:
        popen = subprocess.Popen(
            [sys.executable, "-m", "oob", *watch_args(tmp_path, hostile_target)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            cwd=REPO,
            env=env,
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
        stdout, _ = popen.communicate(timeout=60)
    finally:
        os.close(master)
    console = b"".join(chunks).decode("utf-8", "replace")
    assert popen.returncode == 0, console
    assert "\x1b[" in console, "rich drew nothing: stderr was not a terminal"
    for raw in (TITLE, CLEAR, "\x1b]", "\x07", "\x9b", "\x1b[1A[bold"):
        assert raw not in console, f"{raw!r} reached the terminal"
    plain = console.replace("\r\n", "\n")
    assert ESCAPED_PANIC in plain
    assert "\\x1b]0;pwned\\x07" in plain
    table = stdout.decode()
    assert_no_raw_control(table)
    assert ESCAPED_DIRECTORY in table
    assert (hostile_target / DIRECTORY).is_dir()


def test_inventory_list_escapes_what_an_inventory_carries(
    oob: Callable[..., CliResult], tmp_path: Path
) -> None:
    """An inventory generated from host facts may carry ESC sequences: whether the loader
    takes them (table) or refuses them (error line), the console shows them escaped."""
    path = tmp_path / "inv.toml"
    path.write_text(
        textwrap.dedent("""
        [hosts.web01]
        address = "192.0.2.11\\u001b[2J"
        bmc.address = "192.0.2.201"
        bmc.password = "env:OOB_TEST_UNUSED"
        dump.target = "file:///srv/crash/\\u001b]0;pwned\\u0007"
    """)
    )
    path.chmod(0o600)
    result = oob("inventory", "list", "-i", str(path))
    assert_no_raw_control(result.stdout)
    assert_no_raw_control(result.stderr)
    if result.code == 2:  # refused: one line naming the key, the value itself never shown
        assert "key 'dump.target'" in result.stderr or "key 'address'" in result.stderr
        assert "pwned" not in result.stderr
    else:
        assert result.code == 0 and "192.0.2.11\\x1b[2J" in result.stdout
    if result.code == 0:
        assert "file:///srv/crash/\\x1b]0;pwned\\x07" in result.stdout
        json_result = oob("inventory", "list", "-i", str(path), "--json")
        (record,) = json_result.records
        assert record["address"] == "192.0.2.11\x1b[2J"
        assert record["dump"]["target"] == "file:///srv/crash/\x1b]0;pwned\x07"
    else:
        assert result.code == 2 and result.stderr.startswith("oob: error: ")
