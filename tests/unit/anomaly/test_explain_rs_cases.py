"""``explain_table`` on hand-worked tables shaped like the RS incidents (issue 12, item 3).

Each table is a failure count ``value`` over a request count ``cnt`` per minute and slice, as
in the RS data set. Every leaf serves 1,000 requests a minute with 10 failures (rate 0.01)
over four baseline minutes, so each leaf's expected failures at the incident minute are
1000 * (40 + 0.01) / (4000 + 1) = 10 (the baseline rate with one pseudo-request at the overall
rate 0.01) and the noise gauge is quiet (dispersion 1). A slice with ``C`` observed and ``B``
expected failures scores ``C ln(C/B) - C + B``; the expected answers below are worked out from
that by hand in each test's comment.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import typer
from typer.testing import CliRunner

from assay._errors import UsageError
from assay.anomaly._explain import explain_table
from assay.cli import explain as explain_cli

DIMS_2 = ("bitrate", "p2p")
runner = CliRunner()


def _incident(
    leaves: list[tuple[str, ...]], dims: tuple[str, ...], failures_at_t: dict[tuple[str, ...], int]
) -> pa.Table:
    """Five minutes (0-3 baseline, 4 the incident) of 1,000 requests and 10 failures per leaf;
    at minute 4 the leaves in ``failures_at_t`` have that many failures instead."""
    rows: list[dict[str, Any]] = []
    for minute in range(5):
        for leaf in leaves:
            fails = failures_at_t.get(leaf, 10) if minute == 4 else 10
            rows.append({"min": minute, **dict(zip(dims, leaf, strict=True)), "value": fails})
            rows[-1]["cnt"] = 1000
    return pa.Table.from_pylist(rows)


def _explain(table: pa.Table, dims: tuple[str, ...]) -> Any:
    return explain_table(
        table, time_col="min", dims=list(dims), value="value", total="cnt", at=4, baseline=4
    )


def _llr(c: float, b: float) -> float:
    return c * math.log(c / b) - c + b


def test_a_two_dimensional_cause_is_found_and_not_its_parents() -> None:
    leaves = [("500", "0"), ("500", "1"), ("2000", "0"), ("2000", "1")]
    table = _incident(leaves, DIMS_2, {("2000", "1"): 100})
    ex = _explain(table, DIMS_2)
    # bitrate=2000,p2p=1: 100 vs 10 -> 100 ln 10 - 90 = 140.3; its parents bitrate=2000 and
    # p2p=1: 110 vs 20 -> 97.5; the whole table: 130 vs 40 -> 63.2. The leaf is taken and
    # explains all of the deviance, so the search stops there.
    assert _llr(100, 10) == pytest.approx(140.26, abs=0.01)
    assert _llr(110, 20) == pytest.approx(97.52, abs=0.01)
    assert ex.root_causes == [{"bitrate": "2000", "p2p": "1"}]
    top = ex.rows[0]
    assert top["slice"] == {"bitrate": "2000", "p2p": "1"}
    assert (top["before"], top["after"], top["support"]) == (
        pytest.approx(0.01),
        pytest.approx(0.1),
        1000.0,
    )
    assert top["effect"] == "rate"
    # Overall 40/4000 before, 130/4000 after; the leaf's rate moved it by 90/4000 of 90/4000.
    assert (ex.before, ex.after) == (pytest.approx(0.01), pytest.approx(0.0325))
    assert top["share"] == pytest.approx(1.0)


def test_a_cause_inside_a_dimension_whose_other_values_are_quiet() -> None:
    dims = ("cdn", "bitrate")
    leaves = [(c, b) for c in ("3", "5", "7") for b in ("500", "2000")]
    table = _incident(leaves, dims, {("5", "500"): 40, ("5", "2000"): 40})
    ex = _explain(table, dims)
    # cdn=5: 80 vs 20 -> 80 ln 4 - 60 = 50.9; each of its leaves: 40 vs 10 -> 25.5; the whole
    # table: 120 vs 60 -> 23.2; bitrate=500: 60 vs 30 -> 11.6. cdn=5 explains everything.
    assert _llr(80, 20) == pytest.approx(50.90, abs=0.01)
    assert _llr(120, 60) == pytest.approx(23.18, abs=0.01)
    assert ex.root_causes == [{"cdn": "5"}]
    assert (ex.rows[0]["before"], ex.rows[0]["after"]) == (
        pytest.approx(0.01),
        pytest.approx(0.04),
    )


def test_a_ratio_that_fell_is_explained_by_the_slice_that_fell() -> None:
    dims = ("cdn", "bitrate")
    leaves = [(c, b) for c in ("3", "5", "7") for b in ("500", "2000")]
    table = _incident(leaves, dims, {("5", "500"): 0, ("5", "2000"): 0})
    ex = _explain(table, dims)
    # The ratio falls, 60/6000 -> 40/6000. cdn=5: 0 vs 20 -> 20; each of its leaves: 0 vs 10 ->
    # 10; the whole table: 40 vs 60 -> 40 ln(2/3) + 20 = 3.8; bitrate=500: 20 vs 30 -> 1.9.
    assert 40 * math.log(2 / 3) + 20 == pytest.approx(3.78, abs=0.01)
    assert (ex.before, ex.after) == (pytest.approx(0.01), pytest.approx(40 / 6000))
    assert ex.root_causes == [{"cdn": "5"}]


def test_no_change_at_all_has_no_cause() -> None:
    leaves = [("500", "0"), ("500", "1"), ("2000", "0"), ("2000", "1")]
    ex = _explain(_incident(leaves, DIMS_2, {}), DIMS_2)
    assert ex.root_causes == []
    assert (ex.before, ex.after) == (pytest.approx(0.01), pytest.approx(0.01))


def test_a_rise_the_size_of_the_noise_has_no_cause() -> None:
    leaves = [("500", "0"), ("500", "1"), ("2000", "0"), ("2000", "1")]
    # Every leaf 11 failures instead of 10: the whole table 44 vs 40 -> 44 ln 1.1 - 4 = 0.19,
    # one leaf 11 vs 10 -> 0.05: far under the threshold of 3.
    assert _llr(44, 40) == pytest.approx(0.194, abs=0.001)
    ex = _explain(_incident(leaves, DIMS_2, dict.fromkeys(leaves, 11)), DIMS_2)
    assert ex.root_causes == []


def test_the_whole_table_is_not_a_cause_when_one_leaf_explains_the_change() -> None:
    dims = ("cdn", "bitrate", "p2p")
    leaves = [(c, b, p) for c in ("3", "5") for b in ("500", "2000") for p in ("0", "1")]
    table = _incident(leaves, dims, {("5", "2000", "0"): 60})
    ex = _explain(table, dims)
    # The leaf: 60 vs 10 -> 60 ln 6 - 50 = 57.5; the whole table: 130 vs 80 -> 130 ln 1.625 -
    # 50 = 13.1; any parent of the leaf, e.g. cdn=5: 90 vs 40 -> 23.0.
    assert _llr(60, 10) == pytest.approx(57.51, abs=0.01)
    assert _llr(130, 80) == pytest.approx(13.12, abs=0.01)
    assert ex.root_causes == [{"cdn": "5", "bitrate": "2000", "p2p": "0"}]
    assert {} not in ex.root_causes


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(explain_cli.app, name="explain")
    return app


def test_cli_expected_column_replaces_the_baseline(tmp_path: Path) -> None:
    # One minute only (no history): cdn 3 and 5 each 1,000 requests with a forecast of 10
    # failures; cdn 5 has 50. cdn=5: 50 vs 10 -> 50 ln 5 - 40 = 40.5; the whole table: 60 vs
    # 20 -> 60 ln 3 - 40 = 25.9. The ratio: forecast 20/2000, observed 60/2000.
    path = tmp_path / "f.csv"
    path.write_text(
        "min,cdn,value,cnt,forecast\n7,3,10,1000,10\n7,5,50,1000,10\n", encoding="utf-8"
    )
    args = ["explain", "table", str(path), "--time-col", "min", "--dims", "cdn"]
    args += ["--value", "value", "--total", "cnt", "--expected", "forecast", "--at", "7"]
    result = runner.invoke(_app(), [*args, "-f", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    causes = [r["slice"] for r in rows if r["root_cause"]]
    assert causes == [{"cdn": 5}]
    assert (rows[0]["before"], rows[0]["after"]) == (pytest.approx(0.01), pytest.approx(0.05))
    assert "forecast 'forecast'" in result.stderr


def test_expected_column_for_a_sum_takes_the_forecast_as_the_expectation() -> None:
    # Visits: forecast 100 for FR and 50 for DE at day 2; observed 200 and 50. Day 1 (value
    # equal to its forecast) only gauges the noise, which is zero there.
    t = pa.table(
        {
            "day": [1, 1, 2, 2],
            "country": ["FR", "DE", "FR", "DE"],
            "visits": [90, 60, 200, 50],
            "forecast": [90.0, 60.0, 100.0, 50.0],
        }
    )
    ex = explain_table(
        t, time_col="day", dims=["country"], value="visits", at=2, expected="forecast"
    )
    assert (ex.before, ex.after) == (150.0, 250.0)
    assert ex.root_causes == [{"country": "FR"}]
    assert (ex.rows[0]["before"], ex.rows[0]["after"]) == (100.0, 200.0)


def test_expected_column_must_be_numeric_and_present() -> None:
    t = pa.table({"day": [1, 2], "k": ["a", "a"], "v": [1, 2], "f": ["x", "y"]})
    with pytest.raises(UsageError, match="not a column"):
        explain_table(t, time_col="day", dims=["k"], value="v", at=2, expected="nope")
    with pytest.raises(UsageError, match="must be numeric"):
        explain_table(t, time_col="day", dims=["k"], value="v", at=2, expected="f")
