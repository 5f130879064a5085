"""The one shape every command's renderer has.

A runbook reports as it goes (``event``), the command may say something of its own
(``message``), and at the end there is one report (``report``): a list of outcomes, a
crash report, the dump results, a preflight report.  A live view is on between
``__enter__`` and ``__exit__``, and is ``paused()`` while the engineer is asked
something.  Console and JSON-lines renderers of every command are alike in this, so a
command never needs to know which one it holds.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Generic, Self, TypeVar

from oob.events import Event

R = TypeVar("R")


class Renderer(Generic[R]):
    def event(self, event: Event) -> None:
        raise NotImplementedError

    def message(self, text: str) -> None:
        """A line of the command's own on stderr (escaped: it may quote outside text)."""
        from oob.render.jsonl import write_message

        write_message(text)

    def report(self, report: R) -> None:
        raise NotImplementedError

    def paused(self) -> AbstractContextManager[None]:
        """The live view stops drawing while the engineer answers a question."""
        return nullcontext()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
