"""Everything the CLI prints goes through here (the only module that uses Rich).

Data goes to stdout, messages and progress to stderr. On a terminal, tables are Rich tables and
long work shows a progress bar; when piped, output is plain.
"""

from __future__ import annotations

import csv
import io
import json
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

from assay._records import jsonable, records

OutputFormat = Literal["table", "json", "csv"]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


def message(text: str, *, style: str | None = None) -> None:
    """A message for the person at the terminal (stderr)."""
    err.print(text, style=style, markup=False, soft_wrap=True)


def error(text: str) -> None:
    err.print(f"error: {text}", style="bold red", markup=False, soft_wrap=True)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(jsonable(value))


def print_table(
    table: pa.Table, fmt: OutputFormat, *, title: str | None = None, max_rows: int | None = None
) -> None:
    """Print a table to stdout in the chosen format."""
    if fmt == "json":
        sys.stdout.write(json.dumps(records(table), ensure_ascii=False) + "\n")
        return
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(table.column_names)
        for row in table.to_pylist():
            writer.writerow([_cell(row[c]) for c in table.column_names])
        sys.stdout.write(buf.getvalue())
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
        message(f"... {len(rows) - max_rows} more rows (use --format json or csv for all)")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=jsonable) + "\n")


def print_kv_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str) -> None:
    """A small table of dicts for humans (stderr when data goes elsewhere)."""
    table = pa.Table.from_pylist(
        [{c: r.get(c) for c in columns} for r in rows] or [dict.fromkeys(columns)]
    )
    if not rows:
        table = table.slice(0, 0)
    print_table(table, "table", title=title)


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
