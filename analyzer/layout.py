"""Tables that fit the terminal: numbers keep their digits, headers wrap at word and ``_``
boundaries (never inside a word), text columns wrap before anything else, and the columns that
still do not fit are left out and named under the table (``--wide`` shows them).

rich alone squeezes every column evenly: at 100 columns it printed sizes one digit per line and
headers one letter per line. Here each number column gets the width of its widest cell and of the
longest piece of its header, and only text columns give way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

MISSING = "-"
# The width of a --wide console: tables as wide as they need, lines never wrapped.
UNLIMITED = 100_000
# A rich table row costs 1 border character, plus 3 per column (padding of 1 each side and a
# border), next to the cells' own widths.
_PER_COLUMN = 3
# Where a header may break: after ``_`` or before a space, keeping the characters.
_PIECES = re.compile(r"[^_ ]+_*| +")


@dataclass(frozen=True)
class Column:
    """One column: its name (the metric's one name), unit and how it gives way.

    ``priority``: when the terminal is too narrow the lowest goes first (ties: the rightmost).
    ``text``: wraps down to ``min_width`` instead of keeping its cells whole.
    ``justify``: of a column kept whole (a name, such as a metric's, is kept whole too).
    ``whole_words``: a text column that wraps between words only (numbers, as in an interval).
    """

    name: str
    unit: str = ""
    text: bool = False
    priority: int = 0
    min_width: int = 10
    justify: Literal["left", "right"] = "right"
    whole_words: bool = False

    @property
    def header(self) -> str:
        return f"{self.name} ({self.unit})" if self.unit else self.name


def header_pieces(header: str) -> list[str]:
    """A header cut where it may wrap: ``latency_first_audio_ms (ms)`` ->
    ``latency_``, ``first_``, ``audio_``, ``ms``, ``(ms)``."""
    return [piece for piece in _PIECES.findall(header) if piece.strip()]


def wrap_header(header: str, width: int) -> str:
    """The header on lines of at most ``width`` characters (a piece longer stays whole)."""
    lines: list[str] = []
    for piece in header_pieces(header):
        joiner = "" if lines and lines[-1].endswith("_") else " "
        if lines and len(lines[-1]) + len(joiner) + len(piece) <= width:
            lines[-1] += joiner + piece
        else:
            lines.append(piece)
    return "\n".join(lines)


def _natural(column: Column, cells: Sequence[str]) -> tuple[int, int]:
    """The narrowest and the widest a column wants to be."""
    longest_piece = max((cell_len(p) for p in header_pieces(column.header)), default=1)
    widest_cell = max((cell_len(line) for cell in cells for line in cell.split("\n")), default=1)
    widest = max(longest_piece, widest_cell)
    if column.text:
        narrowest = min(widest, max(longest_piece, column.min_width))
        if column.whole_words:
            words = (word for cell in cells for word in cell.split())
            narrowest = max(narrowest, max((cell_len(w) for w in words), default=1))
        return narrowest, max(widest, len(column.header))
    return widest, max(widest, min(len(column.header), 14))


@dataclass
class Fitted:
    """A table laid out for a width, and the columns it had to leave out."""

    table: Table
    hidden: list[str]
    empty: list[str]

    def print(self, console: Console) -> None:
        console.print(self.table)
        if self.empty:
            console.print(f"[dim]no values: {', '.join(self.empty)}[/dim]")
        if self.hidden:
            console.print(
                f"[dim]not shown for lack of width: {', '.join(self.hidden)} (--wide shows "
                "every column; --format csv or json gives them all)[/dim]"
            )


def fit_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    width: int | None,
    title: str | None = None,
    hide_empty: bool = True,
) -> Fitted:
    """The table of ``rows`` (cells already formatted) for a terminal ``width`` characters wide
    (None: as wide as it needs, for ``--wide``). Columns where every cell is missing are left out
    when ``hide_empty`` (and named), then the lowest priority ones until the rest fit."""
    cells = [[str(row[i]) for row in rows] for i in range(len(columns))]
    keep = list(range(len(columns)))
    hidden: list[int] = []
    empty: list[int] = []
    if hide_empty and rows and width is not None:
        empty = [i for i in keep if all(c in (MISSING, "") for c in cells[i])]
        if len(empty) < len(keep):
            keep = [i for i in keep if i not in empty]
        else:
            empty = []
    sizes = [_natural(column, cells[i]) for i, column in enumerate(columns)]
    if width is not None:
        while len(keep) > 1 and sum(sizes[i][0] + _PER_COLUMN for i in keep) + 1 > width:
            drop = min(reversed(keep), key=lambda i: columns[i].priority)
            keep.remove(drop)
            hidden.append(drop)
    widths = _widths([sizes[i] for i in keep], [columns[i].text for i in keep], width)
    table = Table(title=title, title_justify="left")
    for i, column_width in zip(keep, widths, strict=True):
        column = columns[i]
        table.add_column(
            wrap_header(column.header, column_width),
            justify="left" if column.text else column.justify,
            overflow="fold",
            no_wrap=not column.text,
            width=column_width,
        )
    for row in rows:
        table.add_row(*(str(row[i]) for i in keep))
    return Fitted(
        table, [columns[i].header for i in sorted(hidden)], [columns[i].header for i in empty]
    )


def _widths(sizes: Sequence[tuple[int, int]], text: Sequence[bool], width: int | None) -> list[int]:
    """Each column's width: numbers their narrowest whole width, text as wide as it wants,
    narrowed one character at a time from the widest text column until the table fits (rich's
    own narrowing gives up when two columns are equally wide, and then squeezes numbers)."""
    pairs = zip(sizes, text, strict=True)
    widths = [wide if is_text else narrow for (narrow, wide), is_text in pairs]
    if width is None:
        return widths
    room = width - 1 - _PER_COLUMN * len(widths)
    while sum(widths) > room:
        shrinkable = [i for i, t in enumerate(text) if t and widths[i] > sizes[i][0]]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def console_width(console: Console) -> int | None:
    """The width to fit tables to: None (no limit) for a ``--wide`` console."""
    return None if console.width >= UNLIMITED else console.width
