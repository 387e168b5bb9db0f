"""CSV output is the data, safe to open in a spreadsheet (issue 18, items 6 and 12)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from assay.cli import app
from assay.cli._output import csv_text

runner = CliRunner()

# Tenant ids a spreadsheet would run as formulas (OWASP's list: = + - @ tab, carriage return).
TENANTS = ["=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "plain"]


def _csv(args: list[str]) -> list[list[str]]:
    result = runner.invoke(app, [*args, "--format", "csv"])
    assert result.exit_code == 0, result.output
    return list(csv.reader(io.StringIO(result.stdout, newline="")))


def test_text_cells_that_start_a_formula_are_quoted_with_an_apostrophe(tmp_path: Path) -> None:
    src = tmp_path / "events.jsonl"
    events = [
        {
            "event_id": f"e{i}",
            "event_time": "2026-03-02T12:00:00Z",
            "tenant_id": tenant,
            "user_id": "u",
            "session_id": "s",
            "event_type": "turn",
            # Full precision, and a large cost that a table would group with commas.
            "latency_ms": 123.456789012,
            "cost_usd": 1234567.125,
        }
        for i, tenant in enumerate(TENANTS)
    ]
    src.write_text("".join(json.dumps(e) + "\n" for e in events))
    ws = tmp_path / "ws"
    assert runner.invoke(app, ["ingest", str(src), "--workspace", str(ws)]).exit_code == 0

    rows = _csv(["metrics", "sessions", "--workspace", str(ws)])
    header = rows[0]
    by_tenant = {r[0]: dict(zip(header, r, strict=True)) for r in rows[1:]}
    assert sorted(by_tenant) == sorted(
        ["'=1+2", "'+1", "'-1", "'@SUM(A1)", "'\tx", "'\rx", "plain"]
    )
    plain = by_tenant["plain"]
    assert plain["latency_p50"] == "123.456789012"
    assert plain["cost_usd"] == "1234567.125"


def test_numbers_stay_numbers_even_when_negative(tmp_path: Path) -> None:
    src = tmp_path / "series.csv"
    values = [-3.5, -1.25, 0.1 + 0.2, -2.0, -3.5, -1.0, -2.5, -3.0]
    lines = [f"2026-03-0{i + 1}T00:00:00,{v!r}" for i, v in enumerate(values)]
    src.write_text("timestamp,value\n" + "\n".join(lines) + "\n")
    result = runner.invoke(
        app,
        [
            "anomalies",
            "series",
            str(src),
            "--time-col",
            "timestamp",
            "--value-col",
            "value",
            "-f",
            "csv",
        ],
    )
    assert result.exit_code in (0, 1), result.output
    rows = list(csv.reader(io.StringIO(result.stdout, newline="")))
    assert [r[1] for r in rows[1:]] == [repr(v) for v in values]


@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=30)
)
def test_every_float_survives_a_csv_round_trip(values: list[float]) -> None:
    # Issue 12 item 5: float(cell) == value for every finite double, no rounding, no grouping.
    table = pa.table({"v": pa.array(values, pa.float64()), "i": list(range(len(values)))})
    rows = list(csv.reader(io.StringIO(csv_text(table), newline="")))
    assert rows[0] == ["v", "i"]
    assert [float(r[0]) for r in rows[1:]] == values
    assert all("," not in r[0] and " " not in r[0] for r in rows[1:])


def test_series_csv_gives_back_the_input_values(tmp_path: Path) -> None:
    # Values with more than four significant digits and over a million, through the command.
    values = [1234567.891011, 0.1 + 0.2, 3.141592653589793, 2.5e-7, 98765432.1, 7.0]
    src = tmp_path / "s.csv"
    src.write_text(
        "t,value\n" + "".join(f"2026-01-01T00:{i:02d}:00Z,{v!r}\n" for i, v in enumerate(values)),
        encoding="utf-8",
    )
    rows = _csv(["anomalies", "series", str(src), "--time-col", "t", "--value-col", "value"])
    col = rows[0].index("value")
    assert [float(r[col]) for r in rows[1:]] == values
