"""Drift between two ranges of days from stored profiles, and `assay drift`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import assay
from assay._errors import UsageError
from assay.cli import app
from assay.drift import psi_sketch
from assay.drift._report import drift_report
from assay.ingest import ingest_paths
from assay.profiles import build_profiles, load_profiles
from assay.synth import SynthConfig, write

DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("drift-report")
    out = write(
        root / "data", SynthConfig(tenants=4, users=80, days=42, seed=5, start=dt.date(2026, 1, 1))
    )
    with assay.Workspace.open(root / "ws", create=True) as ws:
        ingest_paths(ws, [root / "data"])
        build_profiles(ws)
    return root / "ws", out.truth


def _weeks(truth: dict[str, Any]) -> tuple[tuple[dt.date, dt.date], tuple[dt.date, dt.date]]:
    """The week before the latency regression, and the week from its start."""
    latency = next(i for i in truth["incidents"] if i["kind"] == "latency_regression")
    start = dt.date.fromisoformat(latency["start"])
    return (start - 7 * DAY, start - DAY), (start, start + 6 * DAY)


def test_the_latency_regression_is_latency_drift_in_the_regressed_template(
    built: tuple[Path, dict[str, Any]],
) -> None:
    ws_path, truth = built
    ref, cur = _weeks(truth)
    with assay.Workspace.open(ws_path) as ws:
        report = drift_report(ws, reference=ref, target=cur, by="prompt_template")
    latency = {
        (r["tenant_id"], r["slice_value"]): r for r in report.columns if r["column"] == "latency_ms"
    }
    regressed = [r for (_, v), r in latency.items() if v == "rag-v3"]
    others = [r for (_, v), r in latency.items() if v not in ("rag-v3", "<OTHER>")]
    assert regressed
    assert all(r["drift"] for r in regressed)
    assert all(r["psi"] > 0.25 for r in regressed)
    # The other templates' latencies did not change: most are not drift.
    assert sum(r["drift"] for r in others) <= len(others) // 4


def test_column_figures_are_the_sketch_statistics_of_the_merged_profiles(
    built: tuple[Path, dict[str, Any]],
) -> None:
    ws_path, truth = built
    ref, cur = _weeks(truth)
    with assay.Workspace.open(ws_path) as ws:
        report = drift_report(ws, reference=ref, target=cur)
        tenant = report.columns[0]["tenant_id"]
        a = load_profiles(ws, since=ref[0], until=ref[1], tenant=tenant)[0]
        b = load_profiles(ws, since=cur[0], until=cur[1], tenant=tenant)[0]
    row = next(
        r for r in report.columns if r["tenant_id"] == tenant and r["column"] == "latency_ms"
    )
    ra, rb = a.columns["latency_ms"].sketch(), b.columns["latency_ms"].sketch()
    assert ra is not None
    assert rb is not None
    # KLL merges compact at random, so two merges of the same days differ by sketch error:
    # within the PSI tolerance of docs/drift.md (0.03 + 10%).
    assert row["psi"] == pytest.approx(psi_sketch(ra, rb), abs=0.03, rel=0.1)
    assert row["n_reference"] == a.columns["latency_ms"].count - a.columns["latency_ms"].nulls
    dataset = next(d for d in report.datasets if d["tenant_id"] == tenant)
    mine = [r for r in report.columns if r["tenant_id"] == tenant]
    assert dataset["columns"] == len(mine)
    assert dataset["drifted"] == sum(r["drift"] for r in mine)
    assert dataset["drift"] == (dataset["drifted"] / dataset["columns"] >= 0.5)


def test_two_ranges_of_the_same_days_show_no_drift(built: tuple[Path, dict[str, Any]]) -> None:
    ws_path, truth = built
    ref, _ = _weeks(truth)
    with assay.Workspace.open(ws_path) as ws:
        report = drift_report(ws, reference=ref, target=ref)
    assert report.columns
    assert not any(r["drift"] for r in report.columns)
    assert all(r["psi"] < 0.03 for r in report.columns)  # sketch error only


def test_bad_ranges_are_usage_errors(built: tuple[Path, dict[str, Any]]) -> None:
    with assay.Workspace.open(built[0]) as ws:
        day = dt.date(2026, 1, 10)
        with pytest.raises(UsageError, match="starts after it ends"):
            drift_report(ws, reference=(day, day - DAY), target=(day, day))
        with pytest.raises(UsageError, match="dataset_share"):
            drift_report(ws, reference=(day, day), target=(day, day), dataset_share=0.0)


def test_cli_drift_formats_and_exit_codes(built: tuple[Path, dict[str, Any]]) -> None:
    ws_path, truth = built
    ref, cur = _weeks(truth)
    span = lambda r: f"{r[0]}..{r[1]}"  # noqa: E731
    runner = CliRunner()
    args = ["drift", "-w", str(ws_path), "--reference", span(ref), "--target", span(cur)]
    out = runner.invoke(app, [*args, "--by", "prompt_template", "--format", "json"])
    assert out.exit_code in (0, 1), out.output
    data = json.loads(out.stdout)
    assert out.exit_code == (1 if any(d["drift"] for d in data["datasets"]) else 0)
    assert data["by"] == "prompt_template"
    assert {"tenant_id", "slice_value", "columns", "drifted", "share", "drift"} <= set(
        data["datasets"][0]
    )
    page = runner.invoke(app, [*args, "--format", "html"])
    assert page.stdout.startswith("<!doctype html>")
    assert "<script" not in page.stdout
    assert "http" not in page.stdout
    same = runner.invoke(
        app,
        [
            "drift",
            "-w",
            str(ws_path),
            "--reference",
            span(ref),
            "--target",
            span(ref),
            "--no-build",
        ],
    )
    assert same.exit_code == 0, same.output
    bad = runner.invoke(
        app, ["drift", "-w", str(ws_path), "--reference", "2026-01-01", "--target", span(cur)]
    )
    assert bad.exit_code == 2
    assert "FIRST..LAST" in bad.stderr


def test_recorded_drift_is_one_incident_per_drifted_dataset_never_raised_twice(
    tmp_path: Path, built: tuple[Path, dict[str, Any]]
) -> None:
    import shutil

    ws_path, truth = built
    copy = tmp_path / "ws"
    shutil.copytree(ws_path, copy)  # incidents are written: keep the shared fixture clean
    ref, cur = _weeks(truth)
    with assay.Workspace.open(copy) as ws:
        # A low dataset share makes every dataset with a drifted column a drifted dataset.
        report = drift_report(
            ws, reference=ref, target=cur, by="prompt_template", dataset_share=0.05, record=True
        )
        drifted = {(c["tenant_id"], c["slice_value"]) for c in report.columns if c["drift"]}
        assert drifted  # the latency regression drifts rag-v3's latency
        assert [o for _, o in report.recorded] == ["opened"] * len(drifted)
        stored = ws.incidents.list(kind="drift")
        assert {(i.tenant_id, i.slice["prompt_template"]) for i in stored} == drifted
        for inc in stored:
            mine = [
                c
                for c in report.columns
                if c["drift"]
                and (c["tenant_id"], c["slice_value"])
                == (inc.tenant_id, inc.slice["prompt_template"])
            ]
            assert set(inc.details["columns"]) == {c["column"] for c in mine}
            assert (inc.start, inc.end) == cur
            assert inc.key.endswith(f"|reference={ref[0]}..{ref[1]}")
        rag = [i for i in stored if i.slice["prompt_template"] == "rag-v3"]
        assert rag
        assert all("latency_ms" in i.details["columns"] for i in rag)
        again = drift_report(
            ws, reference=ref, target=cur, by="prompt_template", dataset_share=0.05, record=True
        )
        # Never raised twice. (KLL merges compact at random: a borderline column may flip
        # between two runs; a dataset whose drifted columns are the same is unchanged.)
        assert "opened" not in {o for _, o in again.recorded}
        assert len(ws.incidents.list(kind="drift")) == len(drifted)

        def columns_of(r: Any) -> dict[Any, set[str]]:
            out: dict[Any, set[str]] = {}
            for c in r.columns:
                if c["drift"]:
                    out.setdefault((c["tenant_id"], c["slice_value"]), set()).add(c["column"])
            return out

        first, second = columns_of(report), columns_of(again)
        for (inc, outcome), d in zip(again.recorded, again.drifted, strict=True):
            key = (d["tenant_id"], d["slice_value"])
            if first.get(key) == second[key]:
                assert outcome == "unchanged", (key, inc)


def test_cli_drift_records_only_when_asked(
    tmp_path: Path, built: tuple[Path, dict[str, Any]]
) -> None:
    import shutil

    ws_path, truth = built
    copy = tmp_path / "ws"
    shutil.copytree(ws_path, copy)
    ref, cur = _weeks(truth)
    args = [
        "drift", "-w", str(copy), "--reference", f"{ref[0]}..{ref[1]}",
        "--target", f"{cur[0]}..{cur[1]}", "--by", "prompt_template", "--no-build",
        "-f", "json",
    ]  # fmt: skip
    runner = CliRunner()
    dry = runner.invoke(app, args)
    assert json.loads(dry.stdout)["incidents"] == []
    with assay.Workspace.open(copy) as ws:
        assert ws.incidents.list(kind="drift") == []
    rec = runner.invoke(app, [*args, "--record"])
    data = json.loads(rec.stdout)
    drifted = [d for d in data["datasets"] if d["drift"]]
    assert len(data["incidents"]) == len(drifted)
    assert rec.exit_code == (1 if drifted else 0)
    assert "incidents:" in rec.stderr
