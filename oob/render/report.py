"""A report that fits the terminal: a compact table, then a ``key: value`` block per host.

The table holds the short essentials, one line per host: its columns never wrap; when the
table is wider than the terminal, the least needed columns are left out (everything is in
the blocks below).  The blocks hold what must be copied whole — the dump's location, the
BMC's URL, the panic line — each on its own line, printed without rich wrapping or cutting
it (a terminal narrower than a path folds the line itself, and the copy stays one token).

Values are outside text: shown through :mod:`oob.render.text` (escaped, never markup).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text


@dataclass(frozen=True)
class Column:
    title: str
    #: when the table is too wide, the column with the highest ``drop`` goes first; 0: kept
    drop: int = 0
    justify: Literal["left", "right"] = "left"


def fitted_table(console: Console, columns: Sequence[Column], rows: Sequence[Sequence[Text]]) -> Table:
    """A table of ``rows`` no wider than ``console`` (columns left out while it is not)."""
    keep = list(range(len(columns)))
    dropping = sorted((i for i, c in enumerate(columns) if c.drop), key=lambda i: -columns[i].drop)
    while True:
        table = _table(columns, rows, keep)
        if not dropping or natural_width(console, table) <= console.width:
            return table
        keep.remove(dropping.pop(0))


def natural_width(console: Console, table: Table) -> int:
    """The width ``table`` takes when nothing limits it."""
    from rich.measure import Measurement

    return Measurement.get(console, console.options.update(max_width=1 << 16), table).maximum


def _table(columns: Sequence[Column], rows: Sequence[Sequence[Text]], keep: list[int]) -> Table:
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for i in keep:
        # one line per host: a cell never wraps (only the last resort, a terminal narrower
        # than the kept columns, shortens the widest with an ellipsis)
        table.add_column(columns[i].title, no_wrap=True, overflow="ellipsis", justify=columns[i].justify)
    for row in rows:
        table.add_row(*(row[i] for i in keep))
    return table


def print_blocks(console: Console, blocks: Sequence[tuple[Text, Sequence[tuple[str, object]]]]) -> None:
    """Per host: a title line, then ``  key: value`` lines (None values left out)."""
    from rich.text import Text

    from oob.render.text import safe

    for title, pairs in blocks:
        shown = [(key, value) for key, value in pairs if value is not None and value != ""]
        console.print()
        console.print(title, soft_wrap=True)
        width = max((len(key) for key, _ in shown), default=0) + 1
        for key, value in shown:
            # soft_wrap: rich neither folds nor crops the line; a path or URL stays one token
            console.print(Text.assemble(f"  {key + ':':<{width}} ", safe(value)), soft_wrap=True)
