"""Everything the CLI prints goes through here (the only module that uses Rich).

Data goes to stdout, messages and progress to stderr. On a terminal, tables are Rich tables and
long work shows a progress bar; when piped, output is plain.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import pyarrow as pa
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from assay._records import jsonable, records, value_text

OutputFormat = Literal["table", "json", "csv"]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


def message(text: str, *, style: str | None = None) -> None:
    """A message for the person at the terminal (stderr)."""
    err.print(text, style=style, markup=False, soft_wrap=True)


def error(text: str) -> None:
    err.print(f"error: {text}", style="bold red", markup=False, soft_wrap=True)


def _cell(value: Any) -> str:
    """A table cell for the eye: floats to 4 significant digits, large ones with thousands
    separators; a missing value (None, NaN) as ``(none)``, as in every text assay prints."""
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return value_text(value)


#: First characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str | int | float:
    """A CSV cell holds the data: numbers at full precision (``repr``) and never rounded or
    grouped, booleans as ``true``/``false``, dates in ISO 8601, null and NaN as an empty cell.

    A text cell that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``,
    ``@``, tab or carriage return) is prefixed with a single quote, as OWASP advises; numbers
    stay numbers (``-3.5`` is written as is).

    Examples
    --------
    >>> [csv_cell(v) for v in (-3.5, 1234567.25, None, float("nan"), True, "=1+1", "-x")]
    [-3.5, 1234567.25, '', '', 'true', "'=1+1", "'-x"]
    """
    value = jsonable(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_text(table: pa.Table) -> str:
    """A table as CSV with a header row, cells as :func:`csv_cell` writes them, rows ending in
    ``\\n``; a cell holding a line break (``\\r`` too) is quoted."""
    # The csv module quotes a cell holding a character of its line terminator: "\r\n" quotes
    # both line breaks, then each row's own terminator is written as "\n".
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    lines: list[str] = []
    for row in [table.column_names, *table.to_pylist()]:
        cells = row if isinstance(row, list) else [csv_cell(row[c]) for c in table.column_names]
        writer.writerow(cells)
        lines.append(buf.getvalue()[:-2] + "\n")
        buf.seek(0)
        buf.truncate()
    return "".join(lines)


def _json_ready(data: Any) -> Any:
    """NaN and infinities as null at any depth (``json.dumps`` would write invalid ``NaN``)."""
    if isinstance(data, dict):
        return {k: _json_ready(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_json_ready(v) for v in data]
    return jsonable(data)


_MORE_ROWS_HINT = "use --format json or csv for all"


def print_table(
    table: pa.Table,
    fmt: OutputFormat,
    *,
    title: str | None = None,
    max_rows: int | None = None,
    more_hint: str | None = _MORE_ROWS_HINT,
) -> None:
    """Print a table to stdout in the chosen format.

    A table cut at ``max_rows`` ends with a ``... N more rows`` line on stdout, with the table
    (not among the messages on stderr), followed by ``more_hint`` when given.
    """
    if fmt == "json":
        sys.stdout.write(json.dumps(records(table), ensure_ascii=False) + "\n")
        return
    if fmt == "csv":
        sys.stdout.write(csv_text(table))
        return
    rows = table.to_pylist()
    shown = rows if max_rows is None else rows[:max_rows]
    if not out.is_terminal:
        # Plain, aligned text when piped.
        widths = [max([len(c), *(len(_cell(r[c])) for r in shown)]) for c in table.column_names]
        lines = ["  ".join(c.ljust(w) for c, w in zip(table.column_names, widths, strict=True))]
        for r in shown:
            cells = (_cell(r[c]).ljust(w) for c, w in zip(table.column_names, widths, strict=True))
            lines.append("  ".join(cells).rstrip())
        if title:
            sys.stdout.write(title + "\n")
        sys.stdout.write("\n".join(lines) + "\n")
    else:
        t = Table(title=title, show_lines=False, header_style="bold")
        for c in table.column_names:
            numeric = pa.types.is_integer(table.schema.field(c).type) or pa.types.is_floating(
                table.schema.field(c).type
            )
            t.add_column(c, justify="right" if numeric else "left")
        for r in shown:
            t.add_row(*(_cell(r[c]) for c in table.column_names))
        out.print(t)
    if max_rows is not None and len(rows) > max_rows:
        note = f"... {len(rows) - max_rows} more rows" + (f" ({more_hint})" if more_hint else "")
        if out.is_terminal:
            out.print(note, style="dim", markup=False)
        else:
            sys.stdout.write(note + "\n")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(_json_ready(data), ensure_ascii=False, default=jsonable) + "\n")


def rows_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> pa.Table:
    """Dicts as a table of exactly ``columns`` (no rows: the columns, empty)."""
    table = pa.Table.from_pylist(
        [{c: r.get(c) for c in columns} for r in rows] or [dict.fromkeys(columns)]
    )
    return table if rows else table.slice(0, 0)


def print_kv_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str) -> None:
    """A small table of dicts for humans (stderr when data goes elsewhere)."""
    print_table(rows_table(rows, columns), "table", title=title)


class ProgressBar:
    """A progress bar on stderr when it is a terminal; silent otherwise."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._tasks: dict[str, Any] = {}

    def task(self, name: str, total: float | None = None) -> None:
        if self._progress is not None and name not in self._tasks:
            self._tasks[name] = self._progress.add_task(name, total=total)

    def advance(self, name: str, amount: float) -> None:
        if self._progress is not None:
            self.task(name)
            self._progress.update(self._tasks[name], advance=amount)


@contextmanager
def days_progress(name: str = "profile days") -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, total)`` callback for work done day by day (profile builds), shown as
    a progress bar on a terminal."""
    with progress() as bar:

        def advance(_done: int, total: int) -> None:
            bar.task(name, total)
            bar.advance(name, 1)

        yield advance


@contextmanager
def progress(description: str = "") -> Iterator[ProgressBar]:
    if not err.is_terminal:
        yield ProgressBar(None)
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as p:
        yield ProgressBar(p)
