"""Release regressions (``assay.drift._releases.find_regressions``) and ``assay regressions``.

Hand-built tenants whose answer is known are ingested into one workspace shared by the
module; counts, rates, p-values and intervals are recomputed here with statsmodels, scipy and
plain Python on the events as built. Then the synthetic telemetry: both injected regressions
(the handoff jump of a model_version rollout, the latency regression of a prompt_template)
must be reported, and nothing else.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from typer.testing import CliRunner

import assay
from assay._errors import UsageError
from assay.cli import app
from assay.drift import (
    RegressionConfig,
    find_regressions,
    newcombe_interval,
    rate_increase_test,
)
from assay.ingest import ingest_paths
from assay.synth import SynthConfig, write

D = dt.date(2026, 1, 15)  # the release day of the hand-built tenants
LAST = D + dt.timedelta(days=6)
SESSIONS = 40  # per value and day
runner = CliRunner()


def _day(offset: int) -> dt.date:
    return D + dt.timedelta(days=offset)


def _latency(i: int) -> float:
    return 1000.0 + 10.0 * (i % 100)  # 1000, 1010, ..., 1990 ms, repeating


class _Events:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def session(
        self, tenant: str, day: dt.date, sid: str, *, handoff: bool, latency: float, **dims: Any
    ) -> None:
        base = {"tenant_id": tenant, "user_id": f"u-{sid}", "session_id": sid}
        for at, kind, extra in (
            ("10:00:00", "session_start", {}),
            ("10:00:05", "turn", {"latency_ms": latency}),
            *([("10:01:00", "handoff", {})] if handoff else []),
        ):
            self.rows.append(
                {
                    "event_id": f"e{len(self.rows)}",
                    "event_time": f"{day.isoformat()}T{at}Z",
                    "event_type": kind,
                    **base,
                    **dims,
                    **extra,
                }
            )


def _build() -> tuple[list[dict[str, Any]], dict[str, list[float]]]:
    """The hand-built tenants; also the latencies of the `slow` tenant per template after D."""
    ev = _Events()
    lat: dict[str, list[float]] = {"t1": [], "t2": []}
    for offset in range(-7, 7):
        day = _day(offset)
        for i in range(SESSIONS):
            sid = f"{day}-{i}"
            # jump: v1 hands off 2 of 40 sessions (5%); v2, from D, 8 of 40 (20%).
            ev.session(
                "jump", day, f"j1-{sid}", handoff=i < 2, latency=_latency(i), model_version="v1"
            )
            # same: v2 hands off exactly as v1.
            ev.session(
                "same", day, f"s1-{sid}", handoff=i < 2, latency=_latency(i), model_version="v1"
            )
            # slow: template t2, new on D, answers twice as slowly as t1.
            ev.session(
                "slow", day, f"l1-{sid}", handoff=False, latency=_latency(i), prompt_template="t1"
            )
            # inplace: a and b all along; from D, a's latencies double (b's do not).
            # shifted: a and b all along; from D, both double (a change of the tenant).
            factor = 2.0 if offset >= 0 else 1.0
            ev.session(
                "inplace",
                day,
                f"ia-{sid}",
                handoff=False,
                latency=_latency(i) * factor,
                prompt_template="a",
            )
            ev.session(
                "inplace",
                day,
                f"ib-{sid}",
                handoff=False,
                latency=_latency(i + 7),
                prompt_template="b",
            )
            ev.session(
                "shifted",
                day,
                f"sa-{sid}",
                handoff=False,
                latency=_latency(i) * factor,
                prompt_template="a",
            )
            ev.session(
                "shifted",
                day,
                f"sb-{sid}",
                handoff=False,
                latency=_latency(i + 7) * factor,
                prompt_template="b",
            )
            if offset >= 0:
                ev.session(
                    "jump", day, f"j2-{sid}", handoff=i < 8, latency=_latency(i), model_version="v2"
                )
                ev.session(
                    "same", day, f"s2-{sid}", handoff=i < 2, latency=_latency(i), model_version="v2"
                )
                ev.session(
                    "slow",
                    day,
                    f"l2-{sid}",
                    handoff=False,
                    latency=2 * _latency(i),
                    prompt_template="t2",
                )
                lat["t1"].append(_latency(i))
                lat["t2"].append(2 * _latency(i))
        # tiny: v2 is tried in 5 sessions only, all handed off.
        ev.session("tiny", day, f"t1-{day}", handoff=False, latency=1000.0, model_version="v1")
        for i in range(SESSIONS):
            ev.session(
                "tiny", day, f"t1-{day}-{i}", handoff=i < 2, latency=1000.0, model_version="v1"
            )
        if 0 <= offset < 5:
            ev.session("tiny", day, f"t2-{day}", handoff=True, latency=1000.0, model_version="v2")
    return ev.rows, lat


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[float]]]:
    root = tmp_path_factory.mktemp("releases")
    rows, lat = _build()
    src = root / "events.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with assay.Workspace.open(root / "ws", create=True) as ws:
        summary = ingest_paths(ws, [src])
        assert summary.total("rejected") == 0
    return root / "ws", lat


@pytest.fixture
def ws_path(built: tuple[Path, dict[str, list[float]]], tmp_path: Path) -> Path:
    shutil.copytree(built[0], tmp_path / "ws")
    return tmp_path / "ws"


@pytest.fixture(scope="module")
def report(built: tuple[Path, dict[str, list[float]]]) -> Any:
    with assay.Workspace.open(built[0]) as ws:
        return find_regressions(ws, since=_day(-7), record=False)


def _rows(report: Any, tenant: str, metric: str | None = None) -> list[dict[str, Any]]:
    return [
        r
        for r in report.rows
        if r["tenant_id"] == tenant and (metric is None or r["metric"] == metric)
    ]


def test_a_new_model_version_that_hands_off_four_times_as_often_is_a_regression(
    report: Any,
) -> None:
    (row,) = _rows(report, "jump", "handoff_rate")
    # 7 days from D, 40 sessions a day per version: v2 hands off 8 a day, v1 2 a day.
    x1, n1, x0, n0 = 56, 280, 14, 280
    assert (row["value"], row["baseline"], row["comparison"]) == ("v2", "v1", "release")
    assert (row["basis"], row["start"], row["end"]) == ("same_days", D, LAST)
    assert (row["n_new"], row["n_base"]) == (n1, n0)
    assert row["new_value"] == pytest.approx(0.2)
    assert row["base_value"] == pytest.approx(0.05)
    assert row["ratio"] == pytest.approx(4.0)
    assert row["diff"] == pytest.approx(0.15)
    _, p = proportions_ztest([x1, x0], [n1, n0], alternative="larger")
    assert row["test"] == "z"
    assert row["p_value"] == pytest.approx(p, rel=1e-9)
    lo, hi = confint_proportions_2indep(x1, n1, x0, n0, method="newcomb", compare="diff")
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi), rel=1e-6)
    assert row["regression"]
    assert row["severity"] == "high"
    others = [r for r in _rows(report, "jump") if r["metric"] != "handoff_rate"]
    assert others
    assert not any(r["regression"] for r in others)


def test_the_same_rates_are_not_a_regression(report: Any) -> None:
    rows = _rows(report, "same")
    assert {r["metric"] for r in rows} == {
        "handoff_rate",
        "thumbs_down_rate",
        "error_rate",
        "latency_p95",
    }
    (handoff,) = _rows(report, "same", "handoff_rate")
    assert handoff["ratio"] == pytest.approx(1.0)
    assert handoff["p_value"] == pytest.approx(0.5)
    assert not any(r["regression"] for r in rows)


def test_a_tiny_rollout_is_not_judged(report: Any) -> None:
    (row,) = _rows(report, "tiny", "handoff_rate")
    assert (row["n_new"], row["new_value"], row["test"]) == (5, 1.0, "none")
    assert row["p_value"] is None
    assert not row["regression"]


def test_a_new_template_with_doubled_latency_is_a_regression(
    report: Any, built: tuple[Path, dict[str, list[float]]]
) -> None:
    lat = built[1]
    (row,) = _rows(report, "slow", "latency_p95")
    assert (row["value"], row["baseline"], row["start"]) == ("t2", "t1", D)
    ranked = sorted(lat["t1"])
    h = 0.95 * (len(ranked) - 1)
    p95 = ranked[int(h)] + (h - int(h)) * (ranked[int(h) + 1] - ranked[int(h)])
    assert row["base_value"] == pytest.approx(p95)
    assert row["new_value"] == pytest.approx(2 * p95)
    assert row["ratio"] == pytest.approx(2.0)
    p = stats.mannwhitneyu(lat["t2"], lat["t1"], alternative="greater").pvalue
    assert row["p_value"] == pytest.approx(p, rel=1e-9)
    assert row["regression"]
    assert row["severity"] == "high"


def test_a_template_slowed_in_place_is_found_against_the_other_templates(report: Any) -> None:
    found = [r for r in _rows(report, "inplace") if r["regression"]]
    assert [(r["value"], r["metric"], r["comparison"], r["start"]) for r in found] == [
        ("a", "latency_p95", "in_place", D)
    ]
    assert found[0]["ratio"] == pytest.approx(2.0, rel=0.05)


def test_a_change_of_the_whole_tenant_is_not_blamed_on_a_template(report: Any) -> None:
    assert _rows(report, "shifted") == []


def test_regressions_are_recorded_once_across_two_runs(ws_path: Path) -> None:
    with assay.Workspace.open(ws_path) as ws:
        first = find_regressions(ws, since=_day(-7))
        second = find_regressions(ws, since=_day(-7))
        stored = ws.incidents.list(kind="regression")
    assert sorted(o for _, o in first.recorded) == ["opened"] * 3
    assert [o for _, o in second.recorded] == ["unchanged"] * 3
    assert sorted(i.key for i in stored) == [
        "regression|handoff_rate|tenant=jump|model_version=v2",
        "regression|latency_p95|tenant=inplace|prompt_template=a",
        "regression|latency_p95|tenant=slow|prompt_template=t2",
    ]
    jump = next(i for i in stored if i.tenant_id == "jump")
    assert (jump.start, jump.end, jump.direction, jump.slice) == (
        D,
        LAST,
        "up",
        {"model_version": "v2"},
    )
    assert (jump.expected, jump.observed) == pytest.approx((0.05, 0.2))
    assert jump.details["baseline"] == "v1"
    assert jump.details["n_new"] == 280


def test_a_narrower_search_and_bad_arguments(ws_path: Path) -> None:
    with assay.Workspace.open(ws_path) as ws:
        later = find_regressions(ws, since=_day(1), fields=["model_version"], record=False)
        assert later.rows == []  # v2 was first seen on D, before since
        with pytest.raises(UsageError, match="fields"):
            find_regressions(ws, fields=["locale"])
        with pytest.raises(UsageError, match="after the last stored event day"):
            find_regressions(ws, until=_day(30))
        with pytest.raises(UsageError, match="swap"):
            find_regressions(ws, since=_day(3), until=_day(1))
        with pytest.raises(UsageError, match="min_count"):
            find_regressions(ws, config=RegressionConfig(min_count=0))


@settings(max_examples=60, deadline=None)
@given(n1=st.integers(1, 400), n0=st.integers(1, 400), a=st.floats(0, 1), b=st.floats(0, 1))
def test_rate_test_and_interval_agree_with_scipy_and_statsmodels(
    n1: int, n0: int, a: float, b: float
) -> None:
    x1, x0 = round(a * n1), round(b * n0)
    lo, hi = newcombe_interval(x1, n1, x0, n0)
    ref = confint_proportions_2indep(x1, n1, x0, n0, method="newcomb", compare="diff")
    assert (lo, hi) == pytest.approx(ref, abs=1e-9)
    name, p = rate_increase_test(x1, n1, x0, n0)
    if name == "fisher":
        ref_p = stats.fisher_exact([[x1, n1 - x1], [x0, n0 - x0]], alternative="greater").pvalue
    else:
        ref_p = proportions_ztest([x1, x0], [n1, n0], alternative="larger")[1]
    assert p == pytest.approx(ref_p, rel=1e-7, abs=1e-12)


# -- synthetic telemetry --------------------------------------------------------------------


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("synth")
    out = write(
        root / "data", SynthConfig(tenants=8, users=100, days=56, seed=3, start=dt.date(2026, 1, 1))
    )
    with assay.Workspace.open(root / "ws", create=True) as ws:
        ingest_paths(ws, [root / "data"])
    return root / "ws", out.truth


def test_both_injected_regressions_are_reported_and_nothing_else(
    synth: tuple[Path, dict[str, Any]],
) -> None:
    path, truth = synth
    start = dt.date.fromisoformat(truth["start"])
    with assay.Workspace.open(path) as ws:
        rep = find_regressions(ws, since=start + dt.timedelta(days=7), record=False)
    by_kind = {i["kind"]: i for i in truth["incidents"]}
    jump, slow = by_kind["handoff_jump"], by_kind["latency_regression"]
    found = {(r["tenant_id"], r["field"], r["value"], r["metric"]): r for r in rep.regressions}
    expected = {(jump["tenant_id"], "model_version", jump["model_version"], "handoff_rate")}
    tenants = [t["tenant_id"] for t in truth["tenants"]]
    expected |= {(t, "prompt_template", slow["prompt_template"], "latency_p95") for t in tenants}
    assert set(found) == expected
    key = next(iter(k for k in expected if k[3] == "handoff_rate"))
    assert found[key]["start"] == dt.date.fromisoformat(jump["start"])
    assert found[key]["baseline"] == jump["baseline_model_version"]
    assert found[key]["ratio"] > 2.0
    slow_start = dt.date.fromisoformat(slow["start"])
    for k, r in found.items():
        if k[3] == "latency_p95":
            assert abs((r["start"] - slow_start).days) <= 1, r
            assert r["ratio"] > 1.4


# -- CLI ------------------------------------------------------------------------------------


def _cli(*args: str) -> Any:
    return runner.invoke(app, ["regressions", *args])


def test_cli_exits_1_when_it_opens_an_incident_and_0_on_a_rerun(ws_path: Path) -> None:
    first = _cli("-w", str(ws_path), "--since", str(_day(-7)), "--format", "json")
    assert first.exit_code == 1, first.output
    rows = json.loads(first.stdout)
    regs = [r for r in rows if r["regression"]]
    assert len(regs) == 3
    assert {r["outcome"] for r in regs} == {"opened"}
    assert all(r["incident_id"] is None for r in rows if not r["regression"])
    again = _cli("-w", str(ws_path), "--since", str(_day(-7)), "--format", "json")
    assert again.exit_code == 0, again.output
    assert {r["outcome"] for r in json.loads(again.stdout) if r["regression"]} == {"unchanged"}


def test_cli_dry_run_records_nothing_and_field_narrows(ws_path: Path) -> None:
    res = _cli(
        "-w",
        str(ws_path),
        "--since",
        str(_day(-7)),
        "--dry-run",
        "--field",
        "model_version",
        "--format",
        "csv",
    )
    assert res.exit_code == 1, res.output
    lines = res.stdout.splitlines()
    assert "incident_id" not in lines[0]
    assert {line.split(",")[1] for line in lines[1:]} == {"model_version"}
    with assay.Workspace.open(ws_path) as ws:
        assert ws.incidents.list(kind="regression") == []
    quiet = _cli(
        "-w",
        str(ws_path),
        "--since",
        str(_day(-7)),
        "--dry-run",
        "--new-only",
        "--field",
        "model_version",
        "--until",
        str(_day(-1)),
    )
    assert quiet.exit_code == 0, quiet.output


def test_cli_engine_duckdb_is_the_default_and_spark_master_needs_pyspark(ws_path: Path) -> None:
    args = ("-w", str(ws_path), "--since", str(_day(-7)), "--dry-run", "--format", "json")
    default, explicit = _cli(*args), _cli(*args, "--engine", "duckdb")
    assert explicit.exit_code == 1, explicit.output
    assert default.exit_code == 1, default.output
    assert json.loads(explicit.stdout) == json.loads(default.stdout)
    assert sum(r["regression"] for r in json.loads(explicit.stdout)) == 3
    bad = _cli(*args, "--spark-master", "local[1]")
    assert bad.exit_code == 2
    assert "--engine pyspark" in bad.stderr


def test_cli_usage_errors_exit_2(ws_path: Path) -> None:
    assert _cli("-w", str(ws_path), "--since", "2026-13-01").exit_code == 2
    assert _cli("-w", str(ws_path), "--field", "locale").exit_code == 2
    assert _cli("-w", str(ws_path), "--until", "2030-01-01").exit_code == 2


def test_newcombe_example_in_the_docstring_matches_statsmodels() -> None:
    ref = confint_proportions_2indep(20, 100, 4, 100, method="newcomb", compare="diff")
    assert np.allclose(newcombe_interval(20, 100, 4, 100), ref)
