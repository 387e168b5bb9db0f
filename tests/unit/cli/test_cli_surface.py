"""The command line's own surface (issue 18, item 11): --version, -h, help text that reads."""

from __future__ import annotations

import importlib.metadata
import itertools
from collections.abc import Iterator

import pytest
import typer
from typer.testing import CliRunner

from assay.cli import app

runner = CliRunner()
WIDTH = 100


def _paths(command: object, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield prefix
    for name, sub in getattr(command, "commands", {}).items():
        yield from _paths(sub, (*prefix, name))


COMMANDS = list(_paths(typer.main.get_command(app)))


def _help(path: tuple[str, ...], flag: str = "--help") -> str:
    result = runner.invoke(app, [*path, flag], terminal_width=WIDTH, env={"COLUMNS": str(WIDTH)})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_version_prints_the_installed_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"assay {importlib.metadata.version('assay')}\n"


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "assay")
def test_h_is_help_everywhere(path: tuple[str, ...]) -> None:
    assert _help(path, "-h") == _help(path)


def _early_breaks(text: str) -> list[str]:
    """Lines of running text broken before the width forced it: the next line's first word
    would have fitted on the line. Checks the description and the command listing."""
    lines = text.splitlines()
    found: list[str] = []
    # The description: lines of one paragraph, between the usage line and the first panel.
    end = next((i for i, line in enumerate(lines) if line.startswith("╭")), len(lines))
    body = lines[2:end]
    for line, nxt in itertools.pairwise(body):
        if line.strip() and nxt.strip():
            room = WIDTH - 1 - len(line.rstrip())
            if len(nxt.split()[0]) + 1 <= room:
                found.append(line.strip())
    # The command listing: a row's description continues on lines whose name cell is blank.
    start = next((i for i, line in enumerate(lines) if line.startswith("╭─ Commands")), None)
    if start is not None:
        rows = lines[start + 1 : next(i for i in range(start, len(lines)) if lines[i][0] == "╰")]
        column = len(rows[0]) - len(rows[0][2:].split(None, 1)[1]) if rows else 0
        width = len(rows[0]) - 2 - column if rows else 0
        for line, nxt in itertools.pairwise(rows):
            cell, nxt_cell = line[column:-1].rstrip(), nxt[column:-1].strip()
            continued = nxt[2:column].strip() == "" and nxt_cell
            if continued and len(cell) + 1 + len(nxt_cell.split()[0]) <= width:
                found.append(cell.strip())
    return found


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "assay")
def test_help_text_is_not_broken_mid_sentence(path: tuple[str, ...]) -> None:
    assert _early_breaks(_help(path)) == []


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "assay")
def test_help_shows_no_bool_type_label(path: tuple[str, ...]) -> None:
    assert "<bool>" not in _help(path)
