"""`assay profile build` and `assay profile reference save|list|delete` through typer's
runner: happy path, output formats, bad arguments; and the package's ``__all__``."""

from __future__ import annotations

import datetime as dt
import json
import types
from pathlib import Path

from profiles_data import ingest, input_event, write_jsonl
from typer.testing import CliRunner

import assay.profiles
from assay.cli import app

runner = CliRunner()
DAYS = [dt.date(2026, 1, 5), dt.date(2026, 1, 6)]


def _workspace(tmp_path: Path) -> Path:
    rows = [
        input_event(f"e{d}-{u}", day, "acme", f"user{u}", intent="book", latency_ms=float(u))
        for d, day in enumerate(DAYS)
        for u in range(3)
    ]
    root = tmp_path / "ws"
    ingest(root, [write_jsonl(rows, tmp_path / "events.jsonl")])
    return root


def test_build_prints_a_json_summary_then_does_nothing_the_second_time(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    result = runner.invoke(app, ["profile", "build", "--workspace", str(root), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["days_rebuilt"] == 2
    assert data["days"] == ["2026-01-05", "2026-01-06"]
    assert data["rows_written"] > 0
    assert data["events_version"] >= 1
    again = runner.invoke(app, ["profile", "build", "-w", str(root), "-f", "json"])
    assert json.loads(again.stdout)["days_rebuilt"] == 0
    assert (root / "profiles" / "days" / "2026-01-06.parquet").exists()


def test_build_table_output_and_since_until(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    first = runner.invoke(app, ["profile", "build", "-w", str(root), "--until", "2026-01-05"])
    assert first.exit_code == 0, first.output
    assert "days_rebuilt" in first.stdout
    assert "1 day(s) rebuilt" in first.output
    assert not (root / "profiles" / "days" / "2026-01-06.parquet").exists()
    # --since forces its days; changed days (2026-01-06, never built) are built anyway.
    forced = runner.invoke(app, ["profile", "build", "-w", str(root), "--since", "2026-01-05"])
    assert "2 day(s) rebuilt" in forced.output
    only_new = runner.invoke(app, ["profile", "build", "-w", str(root), "--since", "2026-01-06"])
    assert "1 day(s) rebuilt" in only_new.output


def test_bad_arguments_exit_2_with_a_message(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    bad_date = runner.invoke(app, ["profile", "build", "-w", str(root), "--since", "someday"])
    assert bad_date.exit_code == 2
    assert "--since must be a date YYYY-MM-DD" in bad_date.output
    swapped = runner.invoke(
        app, ["profile", "build", "-w", str(root), "--since", "2026-01-06", "--until", "2026-01-05"]
    )
    assert swapped.exit_code == 2
    assert "swap them" in swapped.output
    bad_format = runner.invoke(app, ["profile", "build", "-w", str(root), "--format", "xml"])
    assert bad_format.exit_code == 2
    missing = runner.invoke(app, ["profile", "build", "-w", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2
    assert "no assay workspace" in missing.output
    assert "Traceback" not in missing.output
    assert not (root / "profiles" / "days").exists()


def test_all_lists_every_public_name_and_each_imports() -> None:
    module = assay.profiles
    assert len(set(module.__all__)) == len(module.__all__)
    assert all(hasattr(module, name) for name in module.__all__)
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType) and n != "annotations"
    }
    assert public <= set(module.__all__)


def test_ingest_keeps_profiles_current_once_they_were_built(tmp_path: Path) -> None:
    from assay.synth import SynthConfig, write

    data = tmp_path / "data"
    write(data, SynthConfig(tenants=2, users=20, days=6, seed=1, start=dt.date(2026, 1, 1)))
    files = sorted(data.glob("events-*.jsonl"))
    ws = tmp_path / "ws"
    runner = CliRunner()
    first = runner.invoke(app, ["ingest", "-w", str(ws), *map(str, files[:3])])
    assert first.exit_code in (0, 1), first.output
    assert "profiles updated" not in first.stderr  # never built: ingest does not profile
    built = runner.invoke(app, ["profile", "build", "-w", str(ws), "--format", "json"])
    assert built.exit_code == 0, built.output
    days_before = json.loads(built.stdout)["days_rebuilt"]
    more = runner.invoke(app, ["ingest", "-w", str(ws), *map(str, files[3:])])
    assert "profiles updated" in more.stderr
    again = runner.invoke(app, ["profile", "build", "-w", str(ws), "--format", "json"])
    assert json.loads(again.stdout)["days_rebuilt"] == 0  # ingest already did it
    assert days_before >= 1
    skipped = runner.invoke(app, ["ingest", "-w", str(ws), "--no-profile", str(files[0])])
    assert "profiles updated" not in skipped.stderr


def test_reference_save_list_delete_round_trip(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    w = ["-w", str(root)]
    save = ["profile", "reference", "save", "week", "--since", "2026-01-05", "--until"]
    saved = runner.invoke(app, [*save, "2026-01-06", "-f", "json", *w])
    assert saved.exit_code == 0, saved.output
    info = json.loads(saved.stdout)
    # 3 events a day over 2 days, one tenant; the default build's k and slices.
    assert (info["name"], info["source"]) == ("week", "profiles")
    assert (info["events"], info["days"], info["tenants"]) == (6, 2, 1)
    assert (info["first_day"], info["last_day"], info["k"]) == ("2026-01-05", "2026-01-06", 10)
    assert "ref:week" in saved.stderr
    again = runner.invoke(app, [*save, "2026-01-05", *w])
    assert again.exit_code == 2
    assert "--replace" in again.stderr
    replaced = runner.invoke(app, [*save, "2026-01-05", "--replace", "--no-build", *w])
    assert replaced.exit_code == 0, replaced.output
    assert "days" in replaced.stdout  # the table's header
    events = write_jsonl(
        [input_event(f"t{u}", DAYS[0], t, f"user{u}") for u in range(4) for t in ("a", "b")],
        tmp_path / "train.jsonl",
    )
    trained = runner.invoke(
        app, ["profile", "reference", "save", "train", "--events", str(events), "--pooled", *w]
    )
    assert trained.exit_code == 0, trained.output
    assert "8 events of 2 tenant(s)" in trained.stderr
    listed = runner.invoke(app, ["profile", "reference", "list", "-f", "json", *w])
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["source"], r["days"], r["pooled"]) for r in rows] == [
        ("train", "events", 1, True),
        ("week", "profiles", 1, False),
    ]
    assert rows[0]["file"] == str(events)
    table = runner.invoke(app, ["profile", "reference", "list", *w])
    assert "train" in table.stdout
    assert "week" in table.stdout
    deleted = runner.invoke(app, ["profile", "reference", "delete", "week", *w])
    assert deleted.exit_code == 0, deleted.output
    assert "deleted reference week" in deleted.stderr
    gone = runner.invoke(app, ["profile", "reference", "delete", "week", *w])
    assert gone.exit_code == 2
    assert "no stored reference named 'week'" in gone.stderr
    left = runner.invoke(app, ["profile", "reference", "list", "-f", "json", *w])
    assert [r["name"] for r in json.loads(left.stdout)] == ["train"]


def test_reference_save_bad_arguments_exit_2(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    w = ["-w", str(root)]
    save = ["profile", "reference", "save"]
    cases = [
        ([*save, "Bad Name", "--since", "2026-01-05", "--until", "2026-01-06"], "lower-case"),
        ([*save, "r", "--since", "2026-01-05"], "--since D --until D"),
        ([*save, "r"], "--events PATH"),
        ([*save, "r", "--events", "x.jsonl", "--since", "2026-01-05"], "not both"),
        ([*save, "r", "--since", "2026-01-06", "--until", "2026-01-05"], "swap them"),
        ([*save, "r", "--since", "2026-01-01", "--until", "2026-01-02"], "no stored profiles"),
        ([*save, "r", "--events", str(tmp_path / "none.jsonl")], "no events file"),
    ]
    for args, says in cases:
        result = runner.invoke(app, [*args, *w])
        assert result.exit_code == 2, (args, result.output)
        assert says in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.output
    empty = runner.invoke(app, ["profile", "reference", "list", *w])
    assert empty.exit_code == 0
    assert "no stored references" in empty.stderr
