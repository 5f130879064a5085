"""Machine output: one JSON object per line on stdout; messages stay on stderr.

``json.dumps`` keeps its default ``ensure_ascii=True``: every control character (and
every non-ASCII one) leaves as a ``\\uXXXX`` escape, so a line stays one line, parses, and
gives back the exact string a BMC or host sent.  The text lines on stderr are escaped for
the terminal like the console's (:func:`oob.safetext.printable`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from oob.events import Event
from oob.render.base import Renderer
from oob.runbook.common import Outcome
from oob.safetext import printable


class JsonRenderer(Renderer[Sequence[Outcome]]):
    """Per-host outcomes as JSON lines on stdout (every detail, so no columns to choose)."""

    def __init__(self, columns: Sequence[tuple[str, str]] = ()) -> None:
        del columns

    def event(self, event: Event) -> None:
        # stdout carries results only; progress and warnings go to stderr as text
        write_event_line(event)

    def report(self, report: Sequence[Outcome]) -> None:
        for outcome in report:
            write_json(outcome.to_dict())


def json_line(data: dict[str, Any]) -> str:
    """One JSON object, control characters escaped (never ``ensure_ascii=False``)."""
    return json.dumps(data, default=str, ensure_ascii=True)


def write_json(data: dict[str, Any]) -> None:
    try:
        sys.stdout.write(json_line(data) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        stdout_gone()


def stdout_gone() -> None:
    """The reader of oob's output went away (``oob ... --json | head -1``): what follows is
    written to /dev/null, so that the run goes on to its end (its audit records, its exit
    code) instead of failing on every later write, worker threads' included."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def write_event_line(event: Event) -> None:
    """An event that is not JSON output, as an escaped text line on stderr."""
    prefix = f"{event.host}: " if event.host else ""
    sys.stderr.write(printable(f"{prefix}{event.level}: {event.message}") + "\n")
    sys.stderr.flush()


def write_message(text: str) -> None:
    """A message for the operator, on stderr, escaped (its own newlines kept)."""
    sys.stderr.write(printable(text, keep_newlines=True) + "\n")
    sys.stderr.flush()
