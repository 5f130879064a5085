"""A reader that goes away (``oob ... --json | head -1``) ends oob's output, not its run."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
from oob.render.jsonl import write_json
for index in range(20000):
    write_json({"host": f"h{index}", "status": "ok"})
print("the run went on to its end", file=__import__("sys").stderr)
"""


def test_json_lines_to_a_closed_pipe_end_quietly_and_the_run_goes_on() -> None:
    writer = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert writer.stdout is not None and writer.stderr is not None
    first = writer.stdout.readline()
    writer.stdout.close()  # the reader goes away after one line
    errors = writer.stderr.read().decode()
    writer.stderr.close()
    assert writer.wait(timeout=30) == 0
    assert first.startswith(b'{"host": "h0"')
    assert "the run went on to its end" in errors
    assert "Traceback" not in errors and "BrokenPipe" not in errors
