"""``oob demo`` in a real terminal: tmux, 120x50, its screen read back with capture-pane.

The demo's report must show each host once in its table, and no line of the screen may end
inside a URL or a dump path (nothing folded mid-token).  The tmux server runs on a socket of
this test's own and is stopped with it."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOSTS = ["ilo5-1", "idrac9-1", "openbmc-1", "ipmi-1", "ami-1"]
#: the demo ends in about 10 s on an idle machine; this is only the deadline of the wait
DEADLINE_S = 120.0
DONE = "DEMO-EXIT="
#: a row of the live view: the host, then its state word
ROW = re.compile(
    rf"^({'|'.join(map(re.escape, HOSTS))})\s+"
    r"(planning|ready|sending NMI|waiting|writing|stalled|complete|failed|timeout|interrupted|refused)\b"
)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[list[str]]:
    assert shutil.which("tmux"), "tmux is needed (scripts/test installs it)"
    base = ["tmux", "-S", str(tmp_path / "tmux.sock"), "-f", os.devnull]
    yield base
    subprocess.run([*base, "kill-server"], capture_output=True, check=False)


def capture(tmux: list[str], *options: str) -> str:
    return subprocess.run(
        [*tmux, "capture-pane", "-p", "-t", "demo", *options], capture_output=True, text=True, check=True
    ).stdout


def test_oob_demo_in_a_120_by_50_terminal(tmux: list[str], tmp_path: Path) -> None:
    env = {
        "PYTHONPATH": str(REPO),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
    }
    demo = shlex.join([sys.executable, "-m", "oob", "demo"])
    command = f"cd {shlex.quote(str(REPO))} && {demo}; echo {DONE}$?; sleep 600"
    subprocess.run(
        [
            *tmux,
            "new-session",
            "-d",
            "-s",
            "demo",
            "-x",
            "120",
            "-y",
            "50",
            *(arg for key, value in env.items() for arg in ("-e", f"{key}={value}")),
            command,
        ],
        check=True,
    )
    subprocess.run([*tmux, "set-option", "-t", "demo", "history-limit", "5000"], check=True)
    deadline = time.monotonic() + DEADLINE_S
    seen_rows: set[str] = set()
    while DONE not in (screen := capture(tmux, "-S", "-")):
        assert time.monotonic() < deadline, f"the demo did not finish:\n{screen}"
        # the live view, as it is on the screen now: at most one row per host
        rows = [m.group(1) for m in map(ROW.match, capture(tmux).splitlines()) if m]
        assert len(rows) == len(set(rows)), capture(tmux)
        seen_rows.update(rows)
        time.sleep(0.1)
    assert seen_rows == set(HOSTS)
    assert f"{DONE}0" in screen, screen
    lines = screen.splitlines()

    # the report's table: a header, then each host once
    header = next(i for i, line in enumerate(lines) if line.startswith("HOST ") and "STATUS" in line)
    # the view made way for the report: none of its rows is left behind
    assert not [line for line in lines[:header] if ROW.match(line)], screen
    table = lines[header + 1 : lines.index("", header)]
    assert [line.split()[0] for line in table] == HOSTS, screen
    assert all(line.split()[1] == "complete" for line in table), screen
    for line in lines[header:]:
        assert len(line) <= 120
    # each host's block once after it, its BMC URL and dump path whole on their lines
    after = lines[header + len(table) + 1 :]
    for host in HOSTS:
        titles = [line for line in after if line.startswith(f"{host}: ")]
        assert len(titles) == 1, (host, screen)
    urls = [line.split()[-1] for line in after if line.startswith("  bmc:")]
    assert len(urls) == len(HOSTS)
    for url in urls:
        assert re.fullmatch(r"(https://)?127\.0\.0\.1(:\d+)?", url), url
    dumps = [line.split()[-1] for line in after if line.startswith("  dump:")]
    assert len(dumps) == len(HOSTS)
    for path in dumps:
        assert re.fullmatch(r"/tmp/oob-demo-[^/\s]+/crash/[^/\s]+/[^/\s]+/(vmcore|dump\.\d+)", path), path
    panics = [line for line in after if line.startswith("  panic:")]
    assert len(panics) == len(HOSTS)
    assert all(line.endswith("Kernel panic - not syncing: NMI: Not continuing") for line in panics)
    # no line of the screen ends inside a URL (a fold would leave "https://127." behind)
    for line in lines:
        assert not re.search(r"https://[\w.\[\]:-]*[.:\[]$", line), line
