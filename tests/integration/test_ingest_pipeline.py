"""File ingestion end to end on real Delta tables: exactly once, quarantine, edge times."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assay import Workspace
from assay.ingest import FileSummary, ingest_paths


def ev(i: int, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": f"e{i}",
        "event_time": "2026-01-05T10:00:00Z",
        "tenant_id": "acme",
        "user_id": f"user-{i % 3}",
        "session_id": f"s{i // 4}",
        "event_type": "turn",
        "turn_index": i % 4,
        "text": "what is my balance",
    }
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    with Workspace.open(tmp_path / "ws", create=True) as w:
        yield w


def test_event_dates_are_utc_days_whatever_the_offset(ws: Workspace, tmp_path: Path) -> None:
    rows = [
        ev(1, event_time="2026-01-05T23:59:59.999Z"),
        ev(2, event_time="2026-01-06T03:00:00+05:30"),  # 2026-01-05 21:30 UTC
        ev(3, event_time="2026-01-05T20:00:00-05:00"),  # 2026-01-06 01:00 UTC
        ev(4, event_time=1767657600000),  # 2026-01-06T00:00:00Z as epoch ms
    ]
    summary = ingest_paths(ws, [write_jsonl(tmp_path / "a.jsonl", rows)])
    assert summary.total("accepted") == 4
    got = {r["event_id"]: (r["event_date"], r["event_time"]) for r in ws.read("events").to_pylist()}
    utc = dt.UTC
    assert got["e1"] == (
        dt.date(2026, 1, 5),
        dt.datetime(2026, 1, 5, 23, 59, 59, 999000, tzinfo=utc),
    )
    assert got["e2"] == (dt.date(2026, 1, 5), dt.datetime(2026, 1, 5, 21, 30, tzinfo=utc))
    assert got["e3"] == (dt.date(2026, 1, 6), dt.datetime(2026, 1, 6, 1, 0, tzinfo=utc))
    assert got["e4"] == (dt.date(2026, 1, 6), dt.datetime(2026, 1, 6, 0, 0, tzinfo=utc))


def test_replay_is_all_duplicates_and_changes_no_metric(ws: Workspace, tmp_path: Path) -> None:
    rows = [ev(i, event_time=f"2026-01-0{1 + i % 5}T10:00:00Z") for i in range(40)]
    path = write_jsonl(tmp_path / "a.jsonl", rows)
    first = ingest_paths(ws, [path])
    assert (first.total("accepted"), first.total("duplicate")) == (40, 0)
    before = [ws.metrics.dau(), ws.metrics.sessions(), ws.metrics.retention()]
    again = ingest_paths(ws, [path, path])
    assert (again.total("accepted"), again.total("duplicate")) == (0, 80)
    assert again.total("conflicting") == 0
    after = [ws.metrics.dau(), ws.metrics.sessions(), ws.metrics.retention()]
    assert [t.to_pylist() for t in after] == [t.to_pylist() for t in before]
    assert ws.read("events").num_rows == 40
    assert ws.read("content").num_rows == 40


def test_first_write_wins_and_changed_repeats_count_as_conflicting(
    ws: Workspace, tmp_path: Path
) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [ev(1, latency_ms=10.0), ev(2)])
    b = write_jsonl(
        tmp_path / "b.jsonl",
        [ev(1, latency_ms=99.0), ev(2), ev(3), ev(3, latency_ms=5.0), ev(1, tenant_id="other")],
    )
    ingest_paths(ws, [a])
    s = ingest_paths(ws, [b]).files[0]
    assert (s.accepted, s.duplicate, s.conflicting) == (2, 3, 2)
    stored = {(r["tenant_id"], r["event_id"]): r for r in ws.read("events").to_pylist()}
    assert stored[("acme", "e1")]["latency_ms"] == 10.0
    assert ("other", "e1") in stored
    assert stored[("acme", "e3")]["latency_ms"] is None


def test_duplicates_are_checked_before_time_rules(ws: Workspace, tmp_path: Path) -> None:
    old = write_jsonl(tmp_path / "old.jsonl", [ev(1, event_time="2020-01-01T00:00:00Z")])
    assert ingest_paths(ws, [old]).total("accepted") == 1  # files accept any lateness
    again = ingest_paths(ws, [old], max_lateness=dt.timedelta(days=30))
    assert (again.total("duplicate"), again.total("rejected")) == (1, 0)
    late = write_jsonl(tmp_path / "late.jsonl", [ev(2, event_time="2020-01-01T00:00:00Z")])
    s = ingest_paths(ws, [late], max_lateness=dt.timedelta(days=30)).files[0]
    assert (s.rejected, dict(s.rules)) == (1, {"event_time:late": 1})


BAD_LINES: list[tuple[Any, str, str | None]] = [
    ('{"event_id": "x1", "tenant_id": ', "json", None),
    (ev(101, event_time="2026-01-05 10:00:00"), "timezone", "event_time"),
    (ev(102, event_time="yesterday"), "time_format", "event_time"),
    (ev(103, event_time="2099-01-01T00:00:00Z"), "future", "event_time"),
    (ev(104, tenant_id=None), "required", "tenant_id"),
    (ev(105, event_type="click"), "choice", "event_type"),
    (ev(106, turn_index=-1), "minimum", "turn_index"),
    (ev(107, tokens_in="many"), "type", "tokens_in"),
    (ev(108, colour="blue"), "unknown_field", "colour"),
    (ev(109, text="x" * (33 * 1024)), "size", "text"),
    (ev(110, feedback=0), "choice", "feedback"),
    (ev(111, intent_confidence=1.5), "maximum", "intent_confidence"),
    ("[1, 2, 3]", "not_object", None),
]


def test_each_bad_row_is_quarantined_with_its_reason_and_neighbours_kept(
    ws: Workspace, tmp_path: Path
) -> None:
    lines: list[Any] = []
    for bad, _, _ in BAD_LINES:
        lines.extend([ev(len(lines) + 1), bad])
    path = write_jsonl(tmp_path / "mixed.jsonl", lines)
    s = ingest_paths(ws, [path]).files[0]
    assert s.accepted == len(BAD_LINES)
    assert s.rejected == len(BAD_LINES)
    q = sorted(ws.read("quarantine").to_pylist(), key=lambda r: r["line"])
    assert [(r["line"], r["rule"], r["field"]) for r in q] == [
        (2 * k + 2, rule, field) for k, (_, rule, field) in enumerate(BAD_LINES)
    ]
    assert all(r["source"] == str(path) and r["message"] for r in q)


def test_non_utf8_line_is_rejected_alone(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "bytes.jsonl"
    good = json.dumps(ev(1)).encode()
    bad = b'{"event_id": "e2", "text": "caf\xe9"}'
    path.write_bytes(good + b"\n" + bad + b"\n" + json.dumps(ev(3)).encode() + b"\n")
    s = ingest_paths(ws, [path]).files[0]
    assert (s.accepted, s.rejected) == (2, 1)
    assert ws.read("quarantine").column("rule").to_pylist() == ["utf8"]


def test_folder_of_mixed_formats_gzip_and_empty_files(ws: Workspace, tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    write_jsonl(d / "a.jsonl", [ev(1), ev(2)])
    with gzip.open(d / "b.jsonl.gz", "wt") as fh:
        fh.write(json.dumps(ev(3)) + "\n")
    (d / "empty.jsonl").write_text("")
    pq.write_table(pa.Table.from_pylist([ev(4), ev(5)]), d / "c.parquet")
    (d / "d.csv").write_text(
        "event_id,event_time,tenant_id,user_id,session_id,event_type,text,flights\n"
        'e6,2026-01-05T10:00:00Z,acme,u1,s1,turn,"two\nlines",\n'
        'e7,2026-01-05T11:00:00Z,acme,u1,s1,turn,plain,"[""f1"",""f2""]"\n'
    )
    summary = ingest_paths(ws, [d])
    by_name = {Path(f.source).name: f for f in summary.files}
    assert {n: (f.read, f.accepted) for n, f in by_name.items()} == {
        "a.jsonl": (2, 2),
        "b.jsonl.gz": (1, 1),
        "c.parquet": (2, 2),
        "d.csv": (2, 2),
        "empty.jsonl": (0, 0),
    }
    stored = {r["event_id"]: r for r in ws.read("events").to_pylist()}
    assert stored["e7"]["flights"] == ["f1", "f2"]
    texts = {r["event_id"]: r["text"] for r in ws.read("content").to_pylist()}
    assert texts["e6"] == "two\nlines"


def test_a_file_that_vanishes_is_reported_and_the_run_goes_on(
    ws: Workspace, tmp_path: Path
) -> None:
    d = tmp_path / "in"
    d.mkdir()
    write_jsonl(d / "1.jsonl", [ev(1)])
    write_jsonl(d / "2.jsonl", [ev(2)])
    write_jsonl(d / "3.jsonl", [ev(3)])

    def on_file(fs: FileSummary) -> None:
        if fs.source.endswith("1.jsonl"):
            os.remove(d / "2.jsonl")

    summary = ingest_paths(ws, [d], on_file=on_file)
    errors = {Path(f.source).name: f.error for f in summary.files}
    assert errors["1.jsonl"] is None
    assert errors["3.jsonl"] is None
    assert errors["2.jsonl"] is not None
    assert "2.jsonl" in errors["2.jsonl"]
    assert summary.total("accepted") == 2


def test_same_user_id_in_two_tenants_is_two_users(ws: Workspace, tmp_path: Path) -> None:
    rows = [ev(1, tenant_id="a", user_id="bob"), ev(2, tenant_id="b", user_id="bob")]
    ingest_paths(ws, [write_jsonl(tmp_path / "a.jsonl", rows)])
    users = {r["tenant_id"]: r["user_id"] for r in ws.read("events").to_pylist()}
    assert users["a"] != users["b"]
    assert "bob" not in users.values()
    assert users["a"] == ws.pseudonym("a", "bob")


def test_quarantine_keeps_the_row_as_received_redacted_and_pseudonymised(
    ws: Workspace, tmp_path: Path
) -> None:
    bad = ev(
        7,
        event_type="mail bob@example.com",
        tokens_in=5,
        attributes={"note": "call +44 20 7946 0958", "plan": "pro"},
        flights=["f1"],
    )
    ingest_paths(ws, [write_jsonl(tmp_path / "q.jsonl", [bad])])
    [q] = ws.read("quarantine").to_pylist()
    assert (q["tenant_id"], q["event_id"], q["field"], q["rule"]) == (
        "acme",
        "e7",
        "event_type",
        "choice",
    )
    assert q["user_id"] == ws.pseudonym("acme", "user-1")
    assert json.loads(q["row"]) == {
        "event_id": "e7",
        "event_time": "2026-01-05T10:00:00Z",
        "tenant_id": "acme",
        "user_id": ws.pseudonym("acme", "user-1"),
        "session_id": "s1",
        "event_type": "mail <EMAIL>",
        "turn_index": 3,
        "text": "what is my balance",
        "tokens_in": 5,
        "attributes": {"note": "call <PHONE>", "plan": "pro"},
        "flights": ["f1"],
    }
    assert "bob@example.com" not in q["message"]


def test_content_left_by_a_crash_between_commits_is_not_doubled(
    ws: Workspace, tmp_path: Path
) -> None:
    from assay.ingest import Ingestor, read_batches

    path = write_jsonl(tmp_path / "a.jsonl", [ev(i) for i in range(6)])
    # Simulate a crash after the content commit of a batch and before its events commit.
    with Ingestor(ws) as ing:
        prep = ing.prepare(next(read_batches(path)), source=str(path))
        assert prep.content is not None
        with ws.lock.hold(5):
            (ws.path / ".ingest-pending").write_text("x")
            ws.append("content", prep.content)
    assert ws.read("events").num_rows == 0
    assert ws.read("content").num_rows == 6
    summary = ingest_paths(ws, [path])
    assert summary.total("accepted") == 6
    content = ws.read("content")
    assert sorted(content.column("event_id").to_pylist()) == [f"e{i}" for i in range(6)]
    assert not (ws.path / ".ingest-pending").exists()


def test_an_event_repeated_inside_one_file_keeps_one_row_and_one_text(
    ws: Workspace, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [ev(1), ev(2), ev(1), ev(1, text="other")])
    summary = ingest_paths(ws, [path])
    assert (summary.total("accepted"), summary.total("duplicate")) == (2, 2)
    assert summary.total("conflicting") == 1
    content = ws.read("content")
    assert sorted(content.column("event_id").to_pylist()) == ["e1", "e2"]
    # The first copy wins, its text included.
    assert content.column("text").to_pylist() == ["what is my balance"] * 2


def test_a_workspace_path_with_a_space_a_percent_and_accents_works(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "my ws 100% é", create=True) as w:
        path = write_jsonl(tmp_path / "a.jsonl", [ev(i) for i in range(6)])
        assert ingest_paths(w, [path]).total("accepted") == 6
        assert ingest_paths(w, [path]).total("duplicate") == 6
        assert w.read("events").num_rows == 6
        # user-0, user-1, user-2 on 2026-01-05.
        assert w.metrics.dau().column("dau").to_pylist() == [3]


def test_two_writers_on_one_workspace_see_each_others_commits(tmp_path: Path) -> None:
    from assay.ingest import Ingestor, read_batches

    Workspace.open(tmp_path / "ws", create=True).close()
    a_file = write_jsonl(tmp_path / "a.jsonl", [ev(i) for i in range(0, 6)])
    b_file = write_jsonl(tmp_path / "b.jsonl", [ev(i) for i in range(3, 9)])
    with Workspace.open(tmp_path / "ws") as wa, Workspace.open(tmp_path / "ws") as wb:
        ia, ib = Ingestor(wa), Ingestor(wb)
        try:
            [batch_a] = read_batches(a_file, format="jsonl")
            [batch_b] = read_batches(b_file, format="jsonl")
            # a writes e0..e5; b (whose index was loaded before) must still see e3..e5.
            ib.warm()
            assert Counter(ia.ingest_batch(batch_a, source="a").status) == {"accepted": 6}
            assert Counter(ib.ingest_batch(batch_b, source="b").status) == {
                "duplicate": 3,
                "accepted": 3,
            }
            # And a, after its own commit, must see b's e6..e8.
            assert Counter(ia.ingest_batch(batch_b, source="b").status) == {"duplicate": 6}
        finally:
            ia.close()
            ib.close()
        assert sorted(wa.read("events").column("event_id").to_pylist()) == [
            f"e{i}" for i in range(9)
        ]


@pytest.mark.parametrize("depth", [10**5, 10**6])
def test_a_depth_bomb_line_is_quarantined_and_its_neighbours_stored(
    tmp_path: Path, depth: int
) -> None:
    # pyarrow.json used to overflow the C stack on such a line (SIGSEGV, the file lost), so
    # the CLI runs as a child process: a regression fails here instead of killing pytest.
    bomb = json.dumps(ev(2)).rstrip("}") + ', "attributes": ' + "[" * depth + "]" * depth + "}"
    path = write_jsonl(tmp_path / "bomb.jsonl", [ev(1), bomb, ev(3)])
    root = tmp_path / "ws"
    cli = [sys.executable, "-c", "from assay.cli import main; main()"]
    done = subprocess.run(
        [*cli, "ingest", str(path), "--workspace", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])  # 1: a row rejected
    with Workspace.open(root) as ws:
        assert sorted(ws.read("events").column("event_id").to_pylist()) == ["e1", "e3"]
        q = ws.read("quarantine").select(["source", "line", "field", "rule"]).to_pylist()
    assert q == [{"source": str(path), "line": 2, "field": "attributes", "rule": "depth"}]


def test_a_csv_cell_nested_too_deeply_is_a_depth_rejection_of_its_field(
    ws: Workspace, tmp_path: Path
) -> None:
    deep = 10**5
    head = "event_id,event_time,tenant_id,user_id,session_id,event_type,attributes,flights"
    good = "{},2026-01-05T10:00:00Z,acme,u,s,turn,,"
    attributes = '"' + '{""a"":' * deep + '""x""' + "}" * deep + '"'
    flights = '"' + "[" * deep + "]" * deep + '"'
    path = tmp_path / "deep.csv"
    path.write_text(
        "\n".join(
            [
                head,
                good.format("e1"),
                good.format("e2").replace(",,", f",{attributes},"),
                good.format("e3") + flights,
                good.format("e4"),
            ]
        )
        + "\n"
    )
    s = ingest_paths(ws, [path]).files[0]
    assert (s.accepted, s.rejected, s.error) == (2, 2, None)
    q = ws.read("quarantine").select(["event_id", "line", "field", "rule"]).to_pylist()
    assert sorted(q, key=lambda r: r["line"]) == [
        {"event_id": "e2", "line": 3, "field": "attributes", "rule": "depth"},
        {"event_id": "e3", "line": 4, "field": "flights", "rule": "depth"},
    ]


def test_an_unparsed_line_keeps_its_length_rule_and_place_but_no_content(
    ws: Workspace, tmp_path: Path
) -> None:
    bad = [
        b'{"event_id": "e2", "user_id": "raw-7", "user_id": "raw-7"}',  # a key twice
        b'{"event_id": "e3", "user_id": "raw-7", "text": "caf\xe9"}',  # not UTF-8
        b'["raw-7"]',  # not an object
    ]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join([json.dumps(ev(1)).encode(), *bad]) + b"\n")
    ingest_paths(ws, [path])
    q = sorted(ws.read("quarantine").to_pylist(), key=lambda r: r["line"])
    assert [(r["line"], r["rule"], json.loads(r["row"])) for r in q] == [
        (2, "json", {"unparsed": True, "bytes": len(bad[0])}),
        (3, "utf8", {"unparsed": True, "bytes": len(bad[1])}),
        (4, "not_object", {"unparsed": True, "bytes": len(bad[2])}),
    ]
    assert all((r["tenant_id"], r["user_id"], r["field"]) == (None, None, None) for r in q)
    assert not any("raw-7" in json.dumps(r, default=str) for r in q)
