"""Machine output: one JSON object per line on stdout; messages stay on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from oob.events import Event
from oob.runbook.common import Outcome


class JsonRenderer:
    def event(self, event: Event) -> None:
        # stdout carries results only; progress and warnings go to stderr as text
        prefix = f"{event.host}: " if event.host else ""
        sys.stderr.write(f"{prefix}{event.level}: {event.message}\n")
        sys.stderr.flush()

    def message(self, text: str) -> None:
        sys.stderr.write(text + "\n")

    def outcomes(self, outcomes: Sequence[Outcome], columns: Sequence[tuple[str, str]] = ()) -> None:
        for outcome in outcomes:
            write_json(outcome.to_dict())


def write_json(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, default=str) + "\n")
    sys.stdout.flush()
