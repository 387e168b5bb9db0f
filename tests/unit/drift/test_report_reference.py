"""`drift_report` and `assay drift` against a trailing window and against stored references
(frozen, pooled), compared with the range form that test_report.py checks."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import assay
from assay._errors import NotFoundError, UsageError
from assay.cli import app
from assay.drift import DriftReport, drift_report, resolve_reference, trailing_window
from assay.ingest import ingest_paths
from assay.profiles import build_profiles, save_reference, save_reference_events
from assay.synth import SynthConfig, write

DAY = dt.timedelta(days=1)
START = dt.date(2026, 1, 1)  # SynthConfig's first day
REF = (START, START + 6 * DAY)  # the first week
TARGET = (START + 14 * DAY, START + 20 * DAY)  # the third week

# Statistics that depend only on counts and item counts (exact in profiles): equal to the last
# digit between two reports of the same days. The others come from KLL sketches, whose merges
# compact at random: equal within the tolerance of docs/drift.md.
_EXACT = (
    "n_reference",
    "n_current",
    "missing_reference",
    "missing_current",
    "missing_delta",
    "missing_p_value",
    "chi_square",
    "chi_square_p_value",
    "unseen_share",
)


def _make(root: Path) -> Path:
    write(root / "data", SynthConfig(tenants=3, users=40, days=21, seed=11, start=START))
    with assay.Workspace.open(root / "ws", create=True) as ws:
        ingest_paths(ws, [root / "data"])
        build_profiles(ws)
    return root / "ws"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make(tmp_path_factory.mktemp("drift-reference"))


def _rows(report: DriftReport) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {(r["tenant_id"], r["slice_value"], r["column"]): r for r in report.columns}


def _assert_same_figures(a: DriftReport, b: DriftReport) -> None:
    ra, rb = _rows(a), _rows(b)
    assert ra
    assert set(ra) == set(rb)
    for key, x in ra.items():
        y = rb[key]
        for stat in _EXACT:
            if stat in x:
                assert x[stat] == y[stat], (key, stat)
        if x["kind"] == "numeric":
            assert x["psi"] == pytest.approx(y["psi"], abs=0.03, rel=0.1), key
            assert x["ks_statistic"] == pytest.approx(y["ks_statistic"], abs=0.03), key
    assert [d["tenant_id"] for d in a.datasets] == [d["tenant_id"] for d in b.datasets]


def _reference_side(report: DriftReport) -> dict[tuple[Any, ...], tuple[int, int]]:
    return {k: (r["n_reference"], r["missing_reference"]) for k, r in _rows(report).items()}


# -- specs ---------------------------------------------------------------------------------------


def test_trailing_windows_hand_worked() -> None:
    # 28 days ending the day before 2026-02-01: 4..31 January.
    assert trailing_window(28, dt.date(2026, 2, 1)) == (dt.date(2026, 1, 4), dt.date(2026, 1, 31))
    # One day: the day before, across a month end.
    assert trailing_window(1, dt.date(2026, 3, 1)) == (dt.date(2026, 2, 28), dt.date(2026, 2, 28))
    # Across a year end; the target's last day does not matter.
    target = (dt.date(2026, 1, 3), dt.date(2026, 1, 30))
    week = resolve_reference("last:7d", target)
    assert (week.kind, week.spec, week.name) == ("trailing", "last:7d", None)
    assert week.days == (dt.date(2025, 12, 27), dt.date(2026, 1, 2))
    assert resolve_reference("last:2w", target).days == (dt.date(2025, 12, 20), dt.date(2026, 1, 2))


def test_ranges_tuples_and_stored_names_resolve() -> None:
    target = (dt.date(2026, 2, 1), dt.date(2026, 2, 7))
    spaced = resolve_reference(" 2026-01-01 .. 2026-01-28 ", target)
    assert (spaced.kind, spaced.spec) == ("range", "2026-01-01..2026-01-28")
    assert spaced.days == (dt.date(2026, 1, 1), dt.date(2026, 1, 28))
    pair = resolve_reference((dt.date(2026, 1, 1), dt.date(2026, 1, 1)), target)
    assert (pair.kind, pair.spec) == ("range", "2026-01-01..2026-01-01")
    stored = resolve_reference("ref:intent-v3.1", target)
    assert (stored.kind, stored.name, stored.days) == ("stored", "intent-v3.1", None)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("2026-01-01", "FIRST..LAST"),
        ("yesterday", "last:Nd"),
        ("last:28", "ref:NAME"),
        ("last:-3d", "FIRST..LAST"),
        ("last:0d", "at least 1 day"),
        ("ref:", "lower-case letters"),
        ("ref:My Model", "lower-case letters"),
        ("2026-01-28..2026-01-01", "starts after it ends"),
    ],
)
def test_bad_specs_are_usage_errors_saying_the_forms(spec: str, says: str) -> None:
    target = (dt.date(2026, 2, 1), dt.date(2026, 2, 7))
    with pytest.raises(UsageError, match=says):
        resolve_reference(spec, target)


def test_a_reference_that_is_not_a_spec_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="tuple of dates or a spec string"):
        resolve_reference(28, (dt.date(2026, 2, 1), dt.date(2026, 2, 7)))  # type: ignore[arg-type]


# -- reports -------------------------------------------------------------------------------------


def test_a_trailing_window_gives_the_report_of_its_days(built: Path) -> None:
    with assay.Workspace.open(built) as ws:
        trailing = drift_report(ws, reference="last:7d", target=TARGET, by="platform")
        explicit = drift_report(
            ws, reference=(TARGET[0] - 7 * DAY, TARGET[0] - DAY), target=TARGET, by="platform"
        )
    assert trailing.reference == (START + 7 * DAY, START + 13 * DAY) == explicit.reference
    assert (trailing.reference_spec, explicit.reference_spec) == (
        "last:7d",
        "2026-01-08..2026-01-14",
    )
    assert trailing.reference_name is None
    _assert_same_figures(trailing, explicit)


def test_a_stored_reference_gives_the_range_report_and_stays_frozen(tmp_path: Path) -> None:
    ws_path = _make(tmp_path)
    with assay.Workspace.open(ws_path) as ws:
        info = save_reference(ws, "week-1", since=REF[0], until=REF[1])
        by_range = drift_report(ws, reference=REF, target=TARGET)
        stored = drift_report(ws, reference="ref:week-1", target=TARGET)
    assert stored.reference == REF == (info.first_day, info.last_day)
    assert (stored.reference_spec, stored.reference_name, stored.reference_pooled) == (
        "ref:week-1",
        "week-1",
        False,
    )
    _assert_same_figures(stored, by_range)

    # The workspace changes under the reference's days: a user is forgotten, and late events
    # (a copy of the second day's, under new ids) are ingested.
    first = json.loads((tmp_path / "data" / "events-0001.jsonl").read_text().splitlines()[0])
    late = tmp_path / "late.jsonl"
    with late.open("w", encoding="utf-8") as out:
        for line in (tmp_path / "data" / "events-0002.jsonl").read_text().splitlines():
            event = json.loads(line)
            out.write(json.dumps({**event, "event_id": "late-" + event["event_id"]}) + "\n")
    with assay.Workspace.open(ws_path) as ws:
        assert ws.forget(first["tenant_id"], first["user_id"]).events > 0
        ingest_paths(ws, [late])
        build_profiles(ws)
        by_range_now = drift_report(ws, reference=REF, target=TARGET)
        stored_now = drift_report(ws, reference="ref:week-1", target=TARGET)
    moved = [
        key
        for key, r in _rows(by_range_now).items()
        if r["n_reference"] != _rows(by_range)[key]["n_reference"]
    ]
    assert moved  # the range's profiles changed
    # The stored reference's did not (the target side moved with the forgotten user).
    assert _reference_side(stored_now) == _reference_side(stored)


def test_each_tenant_is_compared_with_a_pooled_reference(built: Path) -> None:
    with assay.Workspace.open(built) as ws:
        save_reference(ws, "pooled-week", since=REF[0], until=REF[1], pooled=True, replace=True)
        report = drift_report(ws, reference="ref:pooled-week", target=TARGET)
        one = drift_report(ws, reference="ref:pooled-week", target=TARGET, tenant="tenant-002")
        events = ws.read("events").to_pylist()
    latency = [e for e in events if REF[0] <= e["event_date"] <= REF[1]]
    with_latency = sum(e["latency_ms"] is not None for e in latency)
    tenants = sorted({e["tenant_id"] for e in events})
    assert report.reference_pooled
    assert [d["tenant_id"] for d in report.datasets] == tenants
    for tenant in tenants:
        row = _rows(report)[(tenant, "", "latency_ms")]
        # The reference side is every tenant's first week: counted here from the raw events.
        assert row["n_reference"] == with_latency
        assert row["n_current"] == sum(
            e["latency_ms"] is not None
            for e in events
            if e["tenant_id"] == tenant and TARGET[0] <= e["event_date"] <= TARGET[1]
        )
    assert [d["tenant_id"] for d in one.datasets] == ["tenant-002"]
    assert not one.skipped
    assert _rows(one)[("tenant-002", "", "latency_ms")]["n_reference"] == with_latency


def test_pooled_slices_no_target_tenant_has_are_skipped(tmp_path: Path) -> None:
    rows = [
        {
            "event_id": f"e{u}",
            "event_time": "2026-01-02T10:00:00Z",
            "tenant_id": "elsewhere",
            "user_id": f"u{u}",
            "session_id": f"s{u}",
            "event_type": "turn",
            "platform": "smart-fridge",
            "latency_ms": float(u),
        }
        for u in range(12)
    ]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ws_path = _make(tmp_path)
    with assay.Workspace.open(ws_path) as ws:
        save_reference_events(ws, "fridge", path, pooled=True)
        report = drift_report(ws, reference="ref:fridge", target=TARGET, by="platform")
    assert ("*", "smart-fridge", "no profile in the target range") in report.skipped
    # Every target platform is missing from the reference, and said so.
    reasons = {r for t, _, r in report.skipped if t != "*"}
    assert reasons == {"not in the reference fridge"}
    assert report.datasets == []


def test_stored_reference_errors(built: Path) -> None:
    with assay.Workspace.open(built) as ws:
        with pytest.raises(NotFoundError, match="no stored reference named 'nothing'"):
            drift_report(ws, reference="ref:nothing", target=TARGET)
        save_reference(ws, "whole", since=REF[0], until=REF[1], replace=True)
        with pytest.raises(UsageError, match="swap the days"):
            drift_report(ws, reference="ref:whole", target=(TARGET[1], TARGET[0]))


# -- the CLI -------------------------------------------------------------------------------------


def test_cli_drift_against_a_window_and_a_stored_reference(built: Path) -> None:
    runner = CliRunner()
    base = ["drift", "-w", str(built), "--target", f"{TARGET[0]}..{TARGET[1]}", "--no-build"]
    saved = runner.invoke(
        app,
        [
            "profile",
            "reference",
            "save",
            "cli-week",
            "--since",
            str(REF[0]),
            "--until",
            str(REF[1]),
            "--pooled",
            "--replace",
            "-w",
            str(built),
        ],
    )
    assert saved.exit_code == 0, saved.output
    out = runner.invoke(app, [*base, "--reference", "ref:cli-week", "--format", "json"])
    assert out.exit_code in (0, 1), out.output
    data = json.loads(out.stdout)
    assert data["reference"] == [str(REF[0]), str(REF[1])]
    assert (data["reference_spec"], data["reference_name"], data["reference_pooled"]) == (
        "ref:cli-week",
        "cli-week",
        True,
    )
    assert out.exit_code == (1 if any(d["drift"] for d in data["datasets"]) else 0)
    assert "against ref:cli-week (2026-01-01..2026-01-07, pooled over tenants)" in out.stderr
    window = runner.invoke(app, [*base, "--reference", "last:7d", "--format", "json"])
    assert json.loads(window.stdout)["reference"] == ["2026-01-08", "2026-01-14"]
    assert json.loads(window.stdout)["reference_name"] is None
    page = runner.invoke(app, [*base, "--reference", "ref:cli-week", "--format", "html"])
    assert "against ref:cli-week (2026-01-01..2026-01-07, pooled over tenants)" in page.stdout
    missing = runner.invoke(app, [*base, "--reference", "ref:nope"])
    assert missing.exit_code == 2
    assert "no stored reference named 'nope'" in missing.stderr
    bad = runner.invoke(app, [*base, "--reference", "last:week"])
    assert bad.exit_code == 2
    assert "last:Nd" in bad.stderr
    assert "Traceback" not in bad.output
