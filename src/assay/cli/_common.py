"""Options and error handling shared by every command."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from assay._errors import AssayError, PrivacyError, UsageError
from assay.cli import _output

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        envvar="ASSAY_WORKSPACE",
        help="Workspace folder (default ./assay-workspace).",
        show_default=False,
    ),
]
FormatOpt = Annotated[
    _output.OutputFormat,
    typer.Option("--format", "-f", help="Output format: table, json or csv."),
]


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn assay's errors into a message and an exit code, never a traceback."""
    try:
        yield
    except typer.Exit:
        raise
    except PrivacyError as exc:
        # Redaction failed closed: nothing was stored in the clear, but it is a bug.
        _output.error(f"{exc} This is a bug in assay; please report it.")
        raise typer.Exit(EXIT_INTERNAL) from None
    except AssayError as exc:
        # Usage, schema, workspace, not-found and engine errors: the message says the fix.
        _output.error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    except KeyboardInterrupt:
        _output.error("interrupted; committed batches are kept, re-run to finish (no duplicates)")
        raise typer.Exit(130) from None
    except Exception as exc:
        if os.environ.get("ASSAY_DEBUG"):
            raise
        _output.error(
            f"internal error: {type(exc).__name__}: {exc}. This is a bug in assay; "
            "re-run with ASSAY_DEBUG=1 for a traceback and report it."
        )
        raise typer.Exit(EXIT_INTERNAL) from None


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str, *, option: str) -> float:
    """Seconds in a duration such as ``90s``, ``15m``, ``12h``, ``30d`` or ``2w``."""
    raw = text.strip().lower()
    try:
        value = float(raw[:-1]) * _UNITS[raw[-1]] if raw and raw[-1] in _UNITS else float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        raise UsageError(
            f"{option} must be a duration like 90s, 15m, 12h, 30d or 2w (got {text[:40]!r})"
        )
    return value


def parse_day(value: str | None, option: str) -> dt.date | None:
    """A ``YYYY-MM-DD`` option value as a date (None stays None); a usage error otherwise."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(f"{option} must be a date YYYY-MM-DD (got {value[:40]!r})") from None
