"""Strings from BMCs, hosts and dump targets as terminal output: escaped, never markup.

Every console renderer builds what it prints from these, so there is one place where
outside text becomes terminal text:

- :func:`safe` — a rich ``Text``: control and format characters escaped visibly
  (:func:`oob.safetext.printable`), and never parsed as rich markup (``[bold]``,
  ``[link=...]`` stay literal) because a ``Text`` is not markup;
- :func:`safe_lines` — the same for a block of several lines;
- :func:`plain_line` — a plain ``str`` for writers that do not use rich (stderr lines
  next to JSON output, confirmation prompts).

Our own words (status names, column titles) may carry a style; the text that came from
outside never chooses one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from oob.safetext import printable

if TYPE_CHECKING:
    from rich.text import Text

__all__ = ["cell", "confirmation_lines", "plain_line", "safe", "safe_lines"]


def safe(value: object, style: str = "") -> Text:
    """``value`` as one line of terminal text, escaped, in our ``style``."""
    from rich.text import Text

    return Text(printable(value), style=style)


def cell(value: object, style: str = "", empty: str = "-") -> Text:
    """A table cell: ``empty`` for None or ""."""
    return safe(empty if value is None or value == "" else value, style)


def safe_lines(values: Iterable[object], style: str = "") -> Text:
    """Several values, one per line; each is escaped on its own (an embedded newline
    cannot start a line that looks like ours)."""
    from rich.text import Text

    return Text("\n".join(printable(value) for value in values), style=style)


def plain_line(value: object) -> str:
    """``value`` as one escaped line of plain text, for ``sys.stderr.write``."""
    return printable(value)


def confirmation_lines(lines: Iterable[object]) -> list[str]:
    """The host lines a confirmation prompt shows, each escaped.

    Host names and BMC addresses come from the inventory, power states and methods from
    the BMC: none of them may move the cursor or rewrite the lines above the prompt.
    """
    return [printable(line) for line in lines]
