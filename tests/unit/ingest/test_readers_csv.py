"""The CSV reader: round trips through Python's csv writer, record start lines, bad records."""

from __future__ import annotations

import csv
import gzip
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay._errors import SchemaError
from assay.ingest import csv as csv_reader
from assay.ingest import read_batches
from assay.schema._validate import validate

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def read_all(path: Path, batch_rows: int = 65536) -> tuple[list[dict[str, Any]], list[int], list]:
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    failures = []
    for batch in read_batches(path, batch_rows=batch_rows):
        assert batch.table.num_rows + len(batch.failures) <= batch_rows
        assert len(batch.lines) == batch.table.num_rows
        rows += batch.table.to_pylist()
        lines += batch.lines.to_pylist()
        failures += batch.failures
    return rows, lines, failures


def csv_text(rows: list[list[str]], newline: str, quote_all: bool = False) -> tuple[str, list[int]]:
    """The CSV text of rows, and the line where each row after the header starts."""
    out = io.StringIO()
    # Python's writer leaves a bare "\r" unquoted when the line terminator is "\n" (no reader
    # can read that back), so such cells are quoted explicitly.
    if any("\r" in cell for row in rows for cell in row):
        quote_all = True
    quoting = csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    writer = csv.writer(out, lineterminator=newline, quoting=quoting)
    starts = []
    line = 1
    for row in rows:
        starts.append(line)
        before = out.tell()
        writer.writerow(row)
        line += out.getvalue()[before:].count("\n")
    return out.getvalue(), starts[1:]


# Cells with commas, quotes, line breaks and non-ASCII; no NUL, which CSV cannot carry.
cells = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


@SETTINGS
@given(
    st.integers(min_value=1, max_value=4).flatmap(
        lambda n: st.lists(st.lists(cells, min_size=n, max_size=n), min_size=1, max_size=30)
    ),
    st.integers(min_value=1, max_value=40),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
    st.booleans(),
)
def test_csv_round_trip_keeps_values_and_record_start_lines(
    tmp_path: Path, body: list[list[str]], batch_rows: int, newline: str, gz: bool, quote_all: bool
) -> None:
    header = [f"c{i}" for i in range(len(body[0]))]
    text, starts = csv_text([header, *body], newline, quote_all)
    data = text.encode()
    path = tmp_path / ("e.csv.gz" if gz else "e.csv")
    path.write_bytes(gzip.compress(data) if gz else data)
    got, lines, failures = read_all(path, batch_rows)
    assert failures == []
    assert lines == starts
    # An empty cell is null; a record of one empty cell is written as '""' and read as null.
    expected = [{h: (c if c != "" else None) for h, c in zip(header, r, strict=True)} for r in body]
    assert got == expected


def test_malformed_records_are_isolated_with_their_start_lines(tmp_path: Path) -> None:
    text = (
        "event_id,text,n\n"  # line 1
        'e1,"multi\nline\ncell",1\n'  # lines 2-4
        "bad,row\n"  # line 5: two cells
        "\n"  # line 6: skipped
        'e2,"say ""hi""",2\n'  # line 7
        "e3,a,b,c\n"  # line 8: four cells
        "e4,,\n"  # line 9
    )
    path = tmp_path / "m.csv"
    path.write_text(text)
    rows, lines, failures = read_all(path)
    assert rows == [
        {"event_id": "e1", "text": "multi\nline\ncell", "n": "1"},
        {"event_id": "e2", "text": 'say "hi"', "n": "2"},
        {"event_id": "e4", "text": None, "n": None},
    ]
    assert lines == [2, 7, 9]
    assert [(f.line, f.rule, f.raw) for f in failures] == [
        (5, "csv", "bad,row"),
        (8, "csv", "e3,a,b,c"),
    ]
    assert "should have 3 cells" in failures[0].message


def test_non_utf8_record_is_a_utf8_failure(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_bytes(b"event_id,text\ne1,ok\ne2,caf\xe9\ne3,fine\n")
    rows, lines, failures = read_all(path)
    assert [r["event_id"] for r in rows] == ["e1", "e3"]
    assert lines == [2, 4]
    assert [(f.line, f.rule) for f in failures] == [(3, "utf8")]


def test_unterminated_quote_fails_one_line_and_reading_resumes(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('event_id,text\ne1,x\ne2,"never closed\ne3,y\ne4,z\n')
    rows, lines, failures = read_all(path)
    assert [r["event_id"] for r in rows] == ["e1", "e3", "e4"]
    assert lines == [2, 4, 5]
    assert [(f.line, f.rule) for f in failures] == [(3, "csv")]


def test_long_unterminated_quote_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_reader, "MAX_RECORD_BYTES", 2000)
    monkeypatch.setattr(csv_reader, "_READ_MIN", 512)
    body = "".join(f"e{i},x\n" for i in range(2000))
    path = tmp_path / "q.csv"
    path.write_text('event_id,text\ne0,"open\n' + body)
    rows, lines, failures = read_all(path)
    assert [(f.line, f.rule) for f in failures] == [(2, "csv")]
    assert len(failures[0].raw) <= 2000
    assert lines[:2] == [3, 4]
    assert len(rows) == 2000


def test_bom_crlf_and_missing_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_bytes(b"\xef\xbb\xbfevent_id , text\r\ne1,a\r\n\r\ne2,b")
    rows, lines, failures = read_all(path)
    assert rows == [{"event_id": "e1", "text": "a"}, {"event_id": "e2", "text": "b"}]
    assert lines == [2, 4]
    assert failures == []


def test_na_is_text_and_empty_quoted_cell_is_null(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text('a,b,c\nNA,"",null\n')
    rows, _, _ = read_all(path)
    assert rows == [{"a": "NA", "b": None, "c": "null"}]


@pytest.mark.parametrize("content", ["", "\n\n", "event_id,text\n", "event_id,text"])
def test_empty_file_or_header_only_yields_no_rows(tmp_path: Path, content: str) -> None:
    path = tmp_path / "e.csv"
    path.write_text(content)
    assert sum(b.table.num_rows for b in read_batches(path)) == 0


@pytest.mark.parametrize(
    ("header", "match"),
    [("event_id,event_id\n", "more than once"), ("event_id,,text\n", "name every column")],
)
def test_bad_header_is_a_schema_error(tmp_path: Path, header: str, match: str) -> None:
    path = tmp_path / "h.csv"
    path.write_text(header + "a,b,c\n")
    with pytest.raises(SchemaError, match=match):
        list(read_batches(path))


def test_csv_cells_validate_with_lenient_strings(tmp_path: Path) -> None:
    rows = [
        ["event_id", "event_time", "tenant_id", "user_id", "session_id", "event_type",
         "tokens_in", "handoff", "flights", "attributes", "latency_ms"],
        ["e1", "2026-01-05T10:00:00Z", "t", "u", "s", "turn", "12", "false", '["a","b"]',
         '{"k":"v"}', "1.5"],
        ["e2", "1767607200000", "t", "u", "s", "turn", "", "", "", "", ""],
        ["e3", "2026-01-05T10:00:00Z", "t", "u", "s", "turn", "x", "", "", "", ""],
    ]  # fmt: skip
    path = tmp_path / "v.csv"
    path.write_text(csv_text(rows, "\n")[0])
    [batch] = read_batches(path)
    result = validate(batch.table, lenient_strings=True)
    assert [(r.index, r.field, r.rule) for r in result.rejections] == [(2, "tokens_in", "type")]
    first, second = result.valid.to_pylist()
    assert first["tokens_in"] == 12
    assert first["handoff"] is False
    assert first["flights"] == ["a", "b"]
    assert first["attributes"] == [("k", "v")]
    assert second["event_time"] == datetime(2026, 1, 5, 10, tzinfo=UTC)
    assert second["tokens_in"] is None


def test_large_csv_streams_in_bounded_batches(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with open(path, "w") as f:
        f.write("event_id,text\n")
        for i in range(30_000):
            f.write(f'e{i},"line one\nline two, {i}"\n')
    sizes = []
    expected_line = 2
    for batch in read_batches(path, batch_rows=7000):
        sizes.append(batch.table.num_rows)
        lines = batch.lines.to_pylist()
        assert lines == list(range(expected_line, expected_line + 2 * len(lines), 2))
        expected_line += 2 * len(lines)
    assert max(sizes) <= 7000
    assert sum(sizes) == 30_000
