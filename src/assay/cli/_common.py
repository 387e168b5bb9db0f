"""Options and error handling shared by every command."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from typer.core import TyperGroup

from assay._errors import AssayError, PrivacyError, UsageError, unknown_tenant
from assay.cli import _output

if TYPE_CHECKING:
    from assay.store import Workspace

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3

#: Help text (docstrings, option help) is Markdown: the lines of a paragraph join and rewrap
#: at any terminal width (Rich mode keeps the docstring's own line breaks).
HELP_MARKUP: Literal["markdown"] = "markdown"


class HelpGroup(TyperGroup):
    """A command group whose help shows no type label on flags: typer labels each one
    ``<bool>`` (``--help`` too), which a flag never takes. Set as ``cls`` of every group."""

    # The parameter types are typer's vendored click (typer._click, private): typed as Any.
    def get_params(self, ctx: Any) -> list[Any]:
        return _unlabelled_flags(super().get_params(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None and not isinstance(command, TyperGroup):
            _unlabelled_flags(command.get_params(ctx))
        return command


def command_group(help: str, **settings: Any) -> typer.Typer:
    """A command group (``typer.Typer``) with assay's help: Markdown text, :class:`HelpGroup`,
    no arguments showing the help."""
    return typer.Typer(
        cls=HelpGroup,
        rich_markup_mode=HELP_MARKUP,
        help=help,
        **{"no_args_is_help": True, **settings},
    )


def _unlabelled_flags(params: list[Any]) -> list[Any]:
    for param in params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    return params


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


def require_tenant(ws: Workspace, tenant: str | None) -> None:
    """A ``--tenant`` without any stored event is a :class:`NotFoundError` (exit 2) naming the
    closest known tenants, for commands whose library call would answer it with nothing."""
    if tenant is not None:
        known = ws.tenants()
        if tenant not in known:
            raise unknown_tenant(tenant, known)


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


_RELATIVE_DAY = re.compile(r"today(?:-(\d{1,6}))?|yesterday")


def parse_day(value: str | None, option: str, *, today: dt.date | None = None) -> dt.date | None:
    """A day option's value as a date; None stays None.

    Parameters
    ----------
    value : str or None
        ``YYYY-MM-DD``, or a day relative to today (UTC): ``today``, ``yesterday``, or
        ``today-N``, the day N whole days before today (``today-1`` is ``yesterday``).
        Surrounding spaces and the case of the words are ignored.
    option : str
        The option's name, for the error message (``--since``).
    today : datetime.date, optional
        The day that ``today`` means; default: the current UTC day (a parameter so that
        tests can fix the clock).

    Returns
    -------
    datetime.date or None

    Raises
    ------
    UsageError
        If ``value`` is none of these forms, or names a day before 0001-01-01.

    Examples
    --------
    >>> import datetime as dt
    >>> parse_day("today-7", "--since", today=dt.date(2026, 3, 1))
    datetime.date(2026, 2, 22)
    >>> parse_day("2026-01-05", "--day")
    datetime.date(2026, 1, 5)
    """
    if value is None:
        return None
    text = value.strip().lower()
    match = _RELATIVE_DAY.fullmatch(text)
    try:
        if match is None:
            return dt.date.fromisoformat(text)
        now = today if today is not None else dt.datetime.now(dt.UTC).date()
        back = 1 if text == "yesterday" else int(match.group(1) or 0)
        return now - dt.timedelta(days=back)
    except (ValueError, OverflowError):
        raise UsageError(
            f"{option} must be a date YYYY-MM-DD, or today, yesterday or today-N "
            f"(N days before today, UTC) (got {value[:40]!r})"
        ) from None
