"""Plain-text layout for a terminal: aligned columns and `label  value` fields that fit its
width without ever cutting a name, and kwargs as `key=value` text."""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from model_registry._cli.output import safe


def fmt(value: object) -> str:
    """A kwarg value as TOML-ish text: strings quoted, booleans lower case."""
    return json.dumps(value, ensure_ascii=False, default=str)


def fmt_params(params: Mapping[str, Any], sep: str = "\n") -> str:
    return sep.join(f"{safe(key)}={safe(fmt(value))}" for key, value in params.items())


def terminal_width() -> int | None:
    """The terminal's width in columns (`COLUMNS` first); None when stdout is no terminal."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout is not None and sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def _cell_len(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


def columns(rows: Sequence[Sequence[str]], width: int | None) -> Iterator[str]:
    """Rows as aligned columns (two spaces apart) that fit `width`.

    A cell is never cut: where a row does not fit, the rest of it goes on the next line
    (aligned under its column where there is room); a cell wider than the terminal is
    alone on its line. The first column is as wide as lets the most rows fit on one line,
    so one long name does not push the others past the edge.
    """
    limit = width or sys.maxsize
    widths = [max(_cell_len(row[i]) for row in rows) for i in range(len(rows[0]))]
    if width is not None:
        widths[0] = _first_column_width(rows, widths, width)
    starts = [sum(widths[:i]) + 2 * i for i in range(len(widths))]
    for row in rows:
        line = ""
        for start, cell in zip(starts, row, strict=True):
            at = max(start, _cell_len(line) + 2 if line else 0)
            if line and at + _cell_len(cell) > limit:
                yield line
                line, at = "", start if start + _cell_len(cell) <= limit else 0
            line += " " * (at - _cell_len(line)) + cell
        yield line.rstrip()


def _first_column_width(rows: Sequence[Sequence[str]], widths: list[int], width: int) -> int:
    """The first column's width that lets the most rows fit `width` on one line."""
    middle = sum(widths[1:-1]) + 2 * (len(widths) - 1)

    def fitting(first: int) -> int:
        return sum(
            _cell_len(row[0]) <= first and first + middle + _cell_len(row[-1]) <= width
            for row in rows
        )

    candidates = sorted({_cell_len(row[0]) for row in rows})
    return max(candidates, key=lambda first: (fitting(first), first))


def fields(items: Iterable[tuple[str, str]], width: int | None, indent: int = 0) -> Iterator[str]:
    """`label  value` lines, values aligned and word-wrapped to `width` (a word, such as a
    name or a path, is never broken; one wider than the terminal overflows)."""
    items = list(items)
    label_width = max(len(label) for label, _ in items) + 2
    pad = " " * (indent + label_width)
    for label, value in items:
        first = " " * indent + label.ljust(label_width)
        for n, part in enumerate(value.splitlines() or [""]):
            lead = first if n == 0 else pad
            if width is None:
                yield (lead + part).rstrip()
                continue
            wrapped = textwrap.wrap(
                part,
                width=max(width, len(lead) + 1),
                initial_indent=lead,
                subsequent_indent=pad,
                break_long_words=False,
                break_on_hyphens=False,
            )
            yield from wrapped or [lead.rstrip()]
