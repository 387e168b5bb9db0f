"""Root-cause explanation over a table: hand-worked tables, the mix/rate identity, the labelled
synthetic cases, and ``assay explain table`` through typer's runner."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from assay._errors import UsageError
from assay.anomaly._explain import (
    exact_match_f1,
    explain_table,
    mix_rate,
    synthetic_rca_cases,
)
from assay.cli import explain as explain_cli


def _table(rows: list[tuple[Any, ...]], names: list[str]) -> pa.Table:
    return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})


# -- sums: hand-worked -------------------------------------------------------------------------


def _visits(fr_ios_at: int, fr_web_at: int) -> pa.Table:
    """Days 1-3; FR = 60 ios + 40 web, DE = 50 web, IT = 30 ios; day 3 changes FR only."""
    rows = []
    for day in (1, 2, 3):
        rows += [
            (day, "FR", "ios", fr_ios_at if day == 3 else 60),
            (day, "FR", "web", fr_web_at if day == 3 else 40),
            (day, "DE", "web", 50),
            (day, "IT", "ios", 30),
        ]
    return _table(rows, ["day", "country", "platform", "visits"])


def test_a_doubled_value_is_the_single_root_cause_with_the_whole_share() -> None:
    ex = explain_table(
        _visits(120, 80), time_col="day", dims=["country", "platform"], value="visits", at=3
    )
    # Expected 180 (60 + 40 + 50 + 30), observed 280.
    assert (ex.before, ex.after, ex.metric) == (180.0, 280.0, "sum")
    assert ex.baseline_times == [1, 2]
    top = ex.rows[0]
    assert top["slice"] == {"country": "FR"}
    assert top["root_cause"] is True
    assert top["share"] == pytest.approx(1.0)
    assert (top["before"], top["after"], top["support"]) == (100.0, 200.0, 200.0)
    assert top["score"] == pytest.approx(1.0)
    assert ex.root_causes == [{"country": "FR"}]
    # FR/ios alone explains 60^2 of the 60^2 + 40^2 squared leaf deviation.
    by_slice = {tuple(sorted(r["slice"].items())): r for r in ex.rows}
    fr_ios = by_slice[(("country", "FR"), ("platform", "ios"))]
    assert fr_ios["root_cause"] is False
    assert fr_ios["score"] == pytest.approx(3600 / 5200)
    assert fr_ios["share"] == pytest.approx(0.6)
    assert "effect" not in top


def test_a_two_dimension_cause_is_found_as_the_combination_not_its_parents() -> None:
    rows = []
    for day in (1, 2, 3, 4):
        for country in ("FR", "DE"):
            for platform in ("ios", "web"):
                for app in (1, 2):
                    hit = day == 4 and country == "FR" and platform == "ios"
                    rows.append((day, country, platform, app, 30 if hit else 10))
    t = _table(rows, ["day", "country", "platform", "app", "visits"])
    ex = explain_table(t, time_col="day", dims=["country", "platform", "app"], value="visits", at=4)
    assert ex.root_causes == [{"country": "FR", "platform": "ios"}]
    top = ex.rows[0]
    assert (top["before"], top["after"], top["share"]) == (20.0, 60.0, 1.0)
    by_slice = {tuple(sorted(r["slice"].items())): r for r in ex.rows}
    # The parent FR spreads the rise over 4 leaves (ripple 80/40): half the squared deviation.
    assert by_slice[(("country", "FR"),)]["score"] == pytest.approx(0.5)
    assert by_slice[(("country", "FR"),)]["root_cause"] is False
    # Slice values keep the input's type.
    assert {"app": 1} in [r["slice"] for r in ex.rows]


def test_a_slice_absent_from_the_baseline_can_be_the_root_cause() -> None:
    rows = [(d, "1.0", 100) for d in (1, 2, 3)] + [(3, "2.0", 50)]
    ex = explain_table(
        _table(rows, ["day", "app", "n"]), time_col="day", dims=["app"], value="n", at=3
    )
    assert ex.root_causes == [{"app": "2.0"}]
    assert (ex.rows[0]["before"], ex.rows[0]["after"], ex.rows[0]["share"]) == (0.0, 50.0, 1.0)


def test_no_change_means_no_root_cause_and_no_rows() -> None:
    ex = explain_table(_visits(60, 40), time_col="day", dims=["country"], value="visits", at=3)
    assert ex.before == ex.after == 180.0
    assert ex.rows == []


def test_baseline_is_the_mean_of_the_n_points_before_at() -> None:
    # Day values 10, 20, 30, 40, then 100 at day 5; baseline=2 -> (30 + 40) / 2 = 35.
    rows = [(d, "x", v) for d, v in zip([1, 2, 3, 4, 5], [10, 20, 30, 40, 100], strict=True)]
    t = _table(rows, ["day", "k", "n"])
    ex = explain_table(t, time_col="day", dims=["k"], value="n", at=5, baseline=2)
    assert (ex.before, ex.after, ex.baseline_times) == (35.0, 100.0, [3, 4])
    # A leaf missing at a time point counts 0 there; `at` may be given as text.
    rows = [(1, "x", 10), (2, "y", 10), (3, "x", 10), (3, "y", 10)]
    ex = explain_table(
        _table(rows, ["day", "k", "n"]), time_col="day", dims=["k"], value="n", at="3"
    )
    assert (ex.before, ex.after) == (10.0, 20.0)


def test_timestamps_and_text_at_in_the_columns_zone() -> None:
    days = [dt.datetime(2026, 1, d, tzinfo=dt.UTC) for d in (1, 2, 3)]
    t = pa.table(
        {
            "ts": pa.array([d for d in days for _ in (0, 1)], pa.timestamp("us", tz="UTC")),
            "k": ["a", "b"] * 3,
            "n": [5, 5, 5, 5, 15, 5],
        }
    )
    ex = explain_table(t, time_col="ts", dims=["k"], value="n", at="2026-01-03")
    assert ex.root_causes == [{"k": "a"}]
    assert ex.rows[0]["after"] == 15.0


def test_top_limits_the_rows_and_root_causes_come_first() -> None:
    ex = explain_table(
        _visits(120, 80), time_col="day", dims=["country", "platform"], value="visits", at=3, top=2
    )
    assert len(ex.rows) == 2
    assert [r["root_cause"] for r in ex.rows] == [True, False]
    assert ex.to_list() == ex.rows
    assert ex.to_list() is not ex.rows


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 4), st.sampled_from("abc"), st.integers(0, 50)),
        min_size=1,
        max_size=30,
    )
)
def test_shares_of_one_dimension_sum_to_one_and_slice_values_match_a_reference(
    rows: list[tuple[int, str, int]],
) -> None:
    rows = [*rows, (5, "a", 7)]  # `at` = 5 with some baseline before it when any row is < 5
    t = _table(rows, ["day", "k", "n"])
    days = sorted({r[0] for r in rows if r[0] < 5})
    if not days:
        return
    ex = explain_table(t, time_col="day", dims=["k"], value="n", at=5, baseline=3, top=None)
    base_days = days[-3:]
    sums: dict[tuple[str, int], int] = defaultdict(int)
    for day, k, n in rows:
        sums[(k, day)] += n
    for row in ex.rows:
        if not row["slice"]:  # the whole table, as a root cause: its totals
            assert (row["before"], row["after"]) == pytest.approx((ex.before, ex.after))
            continue
        k = row["slice"]["k"]
        assert row["before"] == pytest.approx(sum(sums[(k, d)] for d in base_days) / len(base_days))
        assert row["after"] == pytest.approx(sums[(k, 5)])
    if ex.after != pytest.approx(ex.before):
        assert sum(r["share"] for r in ex.rows if r["slice"]) == pytest.approx(1.0)


# -- ratios -------------------------------------------------------------------------------------


def _handoffs(day3: list[tuple[str, str, int, int]]) -> pa.Table:
    """de (rate 0.5) and en (rate 0.1) on ios and web; days 1-2 fixed, day 3 given."""
    base = [("de", "ios", 50, 100), ("en", "ios", 100, 1000), ("de", "web", 50, 100)]
    base.append(("en", "web", 100, 1000))
    rows = [(d, *r) for d in (1, 2) for r in base] + [(3, *r) for r in day3]
    return _table(rows, ["day", "locale", "platform", "handoffs", "sessions"])


def _ratio(t: pa.Table) -> Any:
    return explain_table(
        t,
        time_col="day",
        dims=["locale", "platform"],
        value="handoffs",
        total="sessions",
        at=3,
    )


def test_a_ratio_moved_by_traffic_mix_names_the_slice_and_says_mix() -> None:
    day3 = [("de", "ios", 150, 300), ("en", "ios", 100, 1000), ("de", "web", 150, 300)]
    ex = _ratio(_handoffs([*day3, ("en", "web", 100, 1000)]))
    # 300/2200 = 3/22 before, 500/2600 = 5/26 after.
    assert (ex.before, ex.after, ex.metric) == (
        pytest.approx(3 / 22),
        pytest.approx(5 / 26),
        "ratio",
    )
    top = ex.rows[0]
    assert top["slice"] == {"locale": "de"}
    assert top["root_cause"] is True
    assert top["effect"] == "mix"
    # Mix of de: (3/13 - 1/11) * (1/2 - 3/22) = 80/1573 over a change of 8/143: 10/11.
    assert top["share"] == pytest.approx(10 / 11)
    assert (top["before"], top["after"], top["support"]) == (0.5, 0.5, 600.0)
    assert ex.root_causes == [{"locale": "de"}]


def test_a_ratio_moved_by_one_slices_own_rate_says_rate() -> None:
    day3 = [("de", "ios", 50, 100), ("en", "ios", 100, 1000), ("de", "web", 50, 100)]
    ex = _ratio(_handoffs([*day3, ("en", "web", 200, 1000)]))
    assert ex.root_causes == [{"locale": "en", "platform": "web"}]
    top = ex.rows[0]
    assert top["effect"] == "rate"
    # 300/2200 -> 400/2200: all of the 1/22 change is en/web's rate, 0.1 -> 0.2.
    assert top["share"] == pytest.approx(1.0)
    assert (top["before"], top["after"]) == (pytest.approx(0.1), pytest.approx(0.2))


def test_mix_rate_matches_a_hand_worked_example() -> None:
    mix, rate = mix_rate(5, 50, 25, 150, (10, 100), (30, 200))
    assert mix == pytest.approx(0.0)
    assert rate == pytest.approx(0.75 * (25 / 150 - 0.1))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(0, 20), st.integers(0, 20)),
        min_size=1,
        max_size=6,
    )
)
def test_mix_plus_rate_over_a_partition_is_the_change_of_the_ratio(
    parts: list[tuple[int, int, int, int]],
) -> None:
    # (num_before, extra_den_before, num_after, extra_den_after): den >= num.
    slices = [(n0, n0 + e0, n1, n1 + e1) for n0, e0, n1, e1 in parts]
    before = (sum(s[0] for s in slices), sum(s[1] for s in slices))
    after = (sum(s[2] for s in slices), sum(s[3] for s in slices))
    if before[1] == 0 or after[1] == 0:
        return
    exact = Fraction(after[0], after[1]) - Fraction(before[0], before[1])
    total = sum(sum(mix_rate(*s, before, after)) for s in slices)
    assert total == pytest.approx(float(exact), abs=1e-12)


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"at": 9}, "is not a value of 'day'"),
        ({"at": 1}, "no baseline before it"),
        ({"at": "x"}, "cannot be read as a value"),
        ({"value": "nope"}, "value 'nope' is not a column"),
        ({"dims": []}, "dims is empty"),
        ({"dims": ["country", "country"]}, "must not repeat"),
        ({"dims": ["visits"]}, "also the time, value or total"),
        ({"value": "platform"}, "must be numeric"),
        ({"baseline": 0}, "baseline must be an integer >= 1"),
        ({"max_order": 0}, "max_order must be"),
    ],
)
def test_bad_arguments_are_usage_errors_that_say_the_fix(
    kwargs: dict[str, Any], message: str
) -> None:
    args: dict[str, Any] = {"time_col": "day", "dims": ["country"], "value": "visits", "at": 3}
    with pytest.raises(UsageError, match=message):
        explain_table(_visits(120, 80), **{**args, **kwargs})


def test_negative_values_are_rejected() -> None:
    t = _table([(1, "a", 1.0), (2, "a", -1.0)], ["day", "k", "n"])
    with pytest.raises(UsageError, match="negative values"):
        explain_table(t, time_col="day", dims=["k"], value="n", at=2)


# -- labelled synthetic cases ----------------------------------------------------------------


def test_exact_match_f1_counts_only_identical_dimension_value_sets() -> None:
    labelled = [[{"a": 1}], [{"a": 2, "b": "x"}, {"c": 0}]]
    assert exact_match_f1(labelled, labelled) == 1.0
    # A parent of a cause is a false positive and the cause a miss: tp 2, fp 1, fn 1.
    assert exact_match_f1([[{"a": 1}], [{"a": 2}, {"c": 0}]], labelled) == pytest.approx(4 / 6)
    assert exact_match_f1([[], []], labelled) == 0.0
    assert exact_match_f1([[]], [[]]) == 1.0
    with pytest.raises(UsageError, match="one list of slices per case"):
        exact_match_f1([[]], labelled)


def test_synthetic_cases_inject_disjoint_causes_that_really_move() -> None:
    for case in synthetic_rca_cases(15, seed=11):
        t = case.table
        assert t.column_names == ["time", *case.dims, "value"]
        assert case.at == 7
        assert 1 <= len(case.causes) <= 3
        masks = []
        for cause in case.causes:
            assert 1 <= len(cause) <= 3
            mask = np.ones(t.num_rows, dtype=bool)
            for dim, value in cause.items():
                mask &= np.asarray(pc.equal(t.column(dim), value).to_numpy(zero_copy_only=False))
            masks.append(mask)
            times = t.column("time").to_numpy()
            values = t.column("value").to_numpy()
            base = values[mask & (times < 7)].sum() / 7
            after = values[mask & (times == 7)].sum()
            assert base >= 0.01 * values[times < 7].sum() / 7 * 0.5
            assert after / base <= 0.7 or after / base >= 1.3
        for i in range(len(masks)):
            for j in range(i):
                assert not (masks[i] & masks[j]).any()


def test_root_cause_sets_on_100_generated_cases_reach_an_exact_match_f1_of_0_85() -> None:
    """Measured 0.95-0.99 across seeds 0-7 (and about 0.93 with twice the noise). The floor of
    0.85 leaves room for that spread but fails if the search returns parents, children or
    stray noise slices (returning the parent of every cause scores 0)."""
    cases = synthetic_rca_cases(100, seed=0)
    predicted = [
        explain_table(c.table, time_col="time", dims=c.dims, value="value", at=c.at).root_causes
        for c in cases
    ]
    f1 = exact_match_f1(predicted, [c.causes for c in cases])
    print(f"exact-match F1 on 100 synthetic cases (seed 0): {f1:.3f}")
    assert f1 >= 0.85


# -- CLI ----------------------------------------------------------------------------------------


runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(explain_cli.app, name="explain")
    return app


def _cli_table() -> pa.Table:
    days = [dt.date(2026, 1, d) for d in (1, 2, 3, 4)]
    rows = []
    for day in days:
        for locale, platform, h, s in [
            ("de", "ios", 5, 100),
            ("en", "ios", 10, 100),
            ("de", "web", 5, 100),
            ("en", "web", 10, 100),
        ]:
            hit = day == days[-1] and locale == "en" and platform == "web"
            rows.append((day, locale, platform, 40 if hit else h, s))
    return _table(rows, ["day", "locale", "platform", "handoffs", "sessions"])


def test_cli_json_from_csv_reads_at_as_a_date_and_ranks_the_cause_first(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    pacsv.write_csv(_cli_table(), path)
    args = ["explain", "table", str(path), "--time-col", "day", "--dims", "locale,platform"]
    args += ["--value", "handoffs", "--total", "sessions", "--at", "2026-01-04", "-f", "json"]
    result = runner.invoke(_app(), args)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows[0]["slice"] == {"locale": "en", "platform": "web"}
    assert rows[0]["root_cause"] is True
    assert rows[0]["effect"] == "rate"
    assert (rows[0]["before"], rows[0]["after"], rows[0]["support"]) == (0.1, 0.4, 100.0)
    assert set(rows[0]) == {
        "slice",
        "root_cause",
        "score",
        "share",
        "before",
        "after",
        "support",
        "effect",
    }


def test_cli_table_from_parquet_with_numeric_time(tmp_path: Path) -> None:
    path = tmp_path / "v.parquet"
    pq.write_table(_visits(120, 80), path)
    args = ["explain", "table", str(path), "--time-col", "day", "--dims", "country, platform"]
    result = runner.invoke(_app(), [*args, "--value", "visits", "--at", "3", "--baseline", "2"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "slice",
        "root_cause",
        "score",
        "share",
        "before",
        "after",
        "support",
    ]
    assert lines[1].split()[:2] == ["country=FR", "true"]


def test_cli_keeps_version_like_dimension_values_as_text(tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    path.write_text("day,app,n\n1,1.1,10\n1,1.10,10\n2,1.1,10\n2,1.10,30\n", encoding="utf-8")
    args = ["explain", "table", str(path), "--time-col", "day", "--dims", "app", "--value", "n"]
    result = runner.invoke(_app(), [*args, "--at", "2", "-f", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["slice"] == {"app": "1.10"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--at", "2026-02-30"], "cannot be read"), (["--at", "2026-01-09"], "is not a value")],
)
def test_cli_bad_at_is_a_usage_error(tmp_path: Path, extra: list[str], message: str) -> None:
    path = tmp_path / "h.parquet"
    pq.write_table(_cli_table(), path)
    args = ["explain", "table", str(path), "--time-col", "day", "--dims", "locale"]
    result = runner.invoke(_app(), [*args, "--value", "handoffs", *extra])
    assert result.exit_code == 2
    assert message in result.output


def test_cli_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    args = ["explain", "table", str(tmp_path / "no.csv"), "--time-col", "d", "--dims", "k"]
    result = runner.invoke(_app(), [*args, "--value", "n", "--at", "1"])
    assert result.exit_code == 2
    assert "no such file" in result.output


# -- the whole table and counts ---------------------------------------------------------------


def test_a_change_spread_over_every_leaf_is_the_whole_table() -> None:
    # Every country falls to a fifth: no narrower slice explains it.
    rows = []
    for day in range(1, 9):
        for country, n in (("FR", 100), ("DE", 80), ("IT", 60)):
            rows.append((day, country, n if day < 8 else n // 5))
    t = _table(rows, ["day", "country", "n"])
    ex = explain_table(t, time_col="day", dims=["country"], value="n", at=8, counts=True)
    assert ex.root_causes == [{}]
    top = ex.rows[0]
    assert (top["before"], top["after"], top["share"]) == (240.0, 48.0, 1.0)


def test_a_change_in_one_leaf_is_not_the_whole_table() -> None:
    rows = []
    for day in range(1, 9):
        for country, n in (("FR", 100), ("DE", 80), ("IT", 60)):
            rows.append((day, country, n // 5 if (day == 8 and country == "FR") else n))
    t = _table(rows, ["day", "country", "n"])
    ex = explain_table(t, time_col="day", dims=["country"], value="n", at=8, counts=True)
    assert ex.root_causes == [{"country": "FR"}]


def test_with_counts_a_slice_of_a_few_events_is_not_a_cause() -> None:
    # FR doubles (a real cause); a slice seen once, never before, is Poisson noise.
    rows = [(d, "FR", 400 if d == 8 else 200) for d in range(1, 9)]
    rows += [(d, "DE", 300) for d in range(1, 9)] + [(8, "LU", 2)]
    t = _table(rows, ["day", "country", "n"])
    with_counts = explain_table(t, time_col="day", dims=["country"], value="n", at=8, counts=True)
    assert with_counts.root_causes == [{"country": "FR"}]
    lu = next(r for r in with_counts.rows if r["slice"] == {"country": "LU"})
    assert (lu["before"], lu["after"], lu["root_cause"]) == (0.0, 2.0, False)
