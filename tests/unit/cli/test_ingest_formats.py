"""`assay ingest`: --format is the summary's output format as everywhere else, --input-format the
input's; the old spellings still work with a warning (issue 18, item 11)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assay.cli import app

runner = CliRunner()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    # JSON Lines under a name that does not say so: only --input-format jsonl reads it.
    path = tmp_path / "events.data"
    event = {
        "event_id": "1",
        "event_time": "2026-03-02T12:00:00Z",
        "tenant_id": "acme",
        "user_id": "u",
        "session_id": "s",
        "event_type": "turn",
    }
    path.write_text(json.dumps(event) + "\n")
    return path


def _ingest(src: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["ingest", str(src), "-w", str(src.parent / "ws"), *args])
    return result.exit_code, result.stdout, result.stderr


def test_format_chooses_the_summary_format(src: Path) -> None:
    code, out, err = _ingest(src, "--input-format", "jsonl", "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["source"], r["format"], r["accepted"]) for r in rows] == [(str(src), "jsonl", "1")]
    code, out, err = _ingest(src, "--input-format", "jsonl", "-f", "json")
    assert code == 0, err
    assert json.loads(out)["totals"]["duplicate"] == 1
    assert "deprecated" not in err


def test_the_old_input_format_spelling_still_reads_with_a_warning(src: Path) -> None:
    code, out, err = _ingest(src, "--format", "jsonl")
    assert code == 0, err
    assert "--format jsonl for the input format is deprecated; use --input-format jsonl" in err
    assert out.splitlines()[0] == "ingest summary"


def test_the_old_output_option_still_works_with_a_warning(src: Path) -> None:
    code, out, err = _ingest(src, "--input-format", "jsonl", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["totals"]["accepted"] == 1
    assert "--output is deprecated; use --format json" in err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--format", "xml"], "--format must be table, json or csv (got 'xml')"),
        (["--format", "jsonl", "--input-format", "csv"], "--format jsonl is an input format"),
        (["--format", "csv", "-o", "json"], "--output json and --format csv disagree"),
    ],
)
def test_bad_format_combinations_are_usage_errors(
    src: Path, args: list[str], fragment: str
) -> None:
    code, out, err = _ingest(src, *args)
    assert code == 2
    assert fragment in err
    assert out == ""
