"""Events flow back from runbooks to renderers (console, JSON lines, audit log).

Runbooks never print: they call an ``emit`` function with these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    #: "info", "warning", "progress", "error"
    level: str
    message: str
    host: str | None = None
    #: machine-readable name (the JSON "event"), e.g. "nmi_sent", "fallback", "retry"
    kind: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.kind or self.level, "level": self.level, "message": self.message}
        if self.host:
            out["host"] = self.host
        out.update(self.data)
        return out


Emit = Callable[[Event], None]


def discard(event: Event) -> None:
    """An emit that drops everything, for library callers that do not care."""
