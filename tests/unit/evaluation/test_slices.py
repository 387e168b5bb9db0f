"""slice_report: values against scikit-learn on each slice's rows, flags, and the renderings."""

from __future__ import annotations

import math
import re
from typing import Any
from xml.etree import ElementTree

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
)

from assay._errors import UsageError
from assay.evaluation._slices import COLUMNS, slice_report


def _sk(metric: str, y: Any, s: Any, w: Any) -> float | None:
    """scikit-learn's value of a metric on a slice, None where it is undefined."""
    y = np.asarray(y, dtype=int)
    # AUC needs both classes; AP needs positives (without negatives it is 1).
    if metric == "roc_auc" and y.min() == y.max():
        return None
    if metric == "average_precision" and y.max() == 0:
        return None
    if metric == "roc_auc":
        return float(roc_auc_score(y, s, sample_weight=w))
    if metric == "average_precision":
        return float(average_precision_score(y, s, sample_weight=w))
    if metric == "brier_score":
        return float(brier_score_loss(y, s, sample_weight=w, labels=[0, 1]))
    return float(log_loss(y, s, sample_weight=w, labels=[0, 1]))


def _by_hand(
    metric: str, y: Any, s: Any, w: Any, slices: dict[str, Any], feature: str, value: str | None
) -> float | None:
    names = feature.split(" & ")
    parts = [None] * len(names) if value is None else value.split(" & ")
    mask = np.ones(len(y), dtype=bool)
    for name, part in zip(names, parts, strict=True):
        column = np.asarray(slices[name], dtype=object)
        if part in (None, "null"):
            mask &= np.array([v is None for v in column])
        else:
            mask &= np.array([v is not None and str(v) == part for v in column])
    return _sk(metric, np.asarray(y)[mask], np.asarray(s)[mask], None if w is None else w[mask])


METRICS = ("roc_auc", "average_precision", "brier_score", "log_loss")


@st.composite
def _data(draw: st.DrawFn) -> tuple[Any, Any, Any, dict[str, Any]]:
    n = draw(st.integers(2, 40))
    y = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    # Few distinct scores: heavy ties within and across slices.
    s = draw(st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, 1.0]), min_size=n, max_size=n))
    w = draw(st.none() | st.lists(st.sampled_from([0.5, 1.0, 2.0, 3.0]), min_size=n, max_size=n))
    a = draw(st.lists(st.sampled_from(["x", "y", None]), min_size=n, max_size=n))
    b = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    return y, s, None if w is None else np.asarray(w), {"a": a, "b": b}


def _assert_close(got: float | None, want: float | None) -> None:
    if want is None or (isinstance(want, float) and math.isnan(want)):
        assert got is None
    else:
        assert got is not None
        assert abs(got - want) <= 1e-12, (got, want)


@settings(max_examples=40, deadline=None)
@given(_data())
def test_estimates_equal_scikit_learn_on_each_slice(
    data: tuple[Any, Any, Any, dict[str, Any]],
) -> None:
    y, s, w, slices = data
    report = slice_report(y, s, slices, metrics=METRICS, n_boot=0, sample_weight=w)
    rows = report.to_arrow().to_pylist()
    assert {r["feature"] for r in rows} == {"a", "b", "a & b"}
    for r in rows:
        _assert_close(
            r["estimate"], _by_hand(r["metric"], y, s, w, slices, r["feature"], r["value"])
        )
        _assert_close(r["overall"], _sk(r["metric"], y, s, w))
        if r["estimate"] is not None and r["overall"] is not None:
            assert r["gap"] == pytest.approx(r["estimate"] - r["overall"], abs=1e-15)
        assert not r["flagged"]


def test_support_counts_rows_and_a_null_value_is_its_own_slice() -> None:
    y = [0, 1, 0, 1, 1, 0]
    s = [0.1, 0.8, 0.3, 0.6, 0.9, 0.2]
    report = slice_report(y, s, {"loc": ["de", "de", None, None, "en", "en"]}, n_boot=0)
    rows = {(r["value"], r["metric"]): r for r in report.to_arrow().to_pylist()}
    assert rows[("de", "roc_auc")]["support"] == 2
    assert rows[(None, "roc_auc")]["support"] == 2
    assert rows[(None, "roc_auc")]["estimate"] == 1.0


def _noise(n: int, seed: int) -> tuple[Any, Any, dict[str, Any]]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    s = np.clip(0.35 * y + 0.65 * rng.random(n), 0, 1)
    slices = {
        "region": rng.choice(["north", "south", "east", "west"], n),
        "device": rng.choice(["ios", "android", "web"], n),
        "tier": rng.integers(0, 5, n),
    }
    return y, s, slices


def test_a_planted_bad_slice_is_flagged_and_only_where_it_is_worse() -> None:
    y, s, slices = _noise(6000, seed=1)
    rng = np.random.default_rng(2)
    bad = slices["device"] == "web"
    s = s.copy()
    s[bad] = rng.random(int(bad.sum()))  # the model knows nothing on the web
    table = slice_report(y, s, slices, n_boot=100, seed=3).to_arrow()
    flagged = [r for r in table.to_pylist() if r["flagged"]]
    assert {(r["feature"], r["value"], r["metric"]) for r in flagged} >= {
        ("device", "web", "roc_auc"),
        ("device", "web", "average_precision"),
        ("device", "web", "brier_score"),
    }
    for r in flagged:
        # Every flag is on a slice that holds web rows, and says it is worse than overall.
        assert "web" in r["value"]
        assert r["p_value"] < 0.05
        assert (r["gap"] > 0) if r["metric"] == "brier_score" else (r["gap"] < 0)


def test_pure_noise_flags_nothing() -> None:
    y, s, slices = _noise(6000, seed=5)
    report = slice_report(y, s, slices, n_boot=100, seed=0)
    assert report.n_flagged == 0
    p = np.array([v for v in report.to_arrow().column("p_value").to_pylist() if v is not None])
    # Under the null the p-values spread over (0, 1) rather than piling up near 0.
    assert p.size > 100
    assert 0.2 < float(np.median(p)) < 0.8


def test_small_slices_are_never_flagged_and_get_no_p_value() -> None:
    y, s, slices = _noise(3000, seed=7)
    tiny = np.zeros(3000, dtype=bool)
    tiny[:20] = True
    s = s.copy()
    s[tiny] = 1.0 - s[tiny]  # terrible, but only 20 rows
    slices = {"tiny": np.where(tiny, "yes", "no"), "region": slices["region"]}
    table = slice_report(y, s, slices, n_boot=60, min_support=30, pairs=False).to_arrow()
    for r in table.to_pylist():
        if r["value"] == "yes":
            assert r["support"] == 20
            assert r["p_value"] is None
            assert not r["flagged"]
            # Much worse than overall, yet not flagged: 20 rows are below min_support.
            assert (r["gap"] > 0) if r["metric"] == "brier_score" else (r["gap"] < 0)


def test_intervals_bracket_the_estimates_and_the_report_is_seeded() -> None:
    y, s, slices = _noise(2000, seed=11)
    a = slice_report(y, s, slices, n_boot=50, seed=4, pairs=False).to_arrow()
    b = slice_report(y, s, slices, n_boot=50, seed=4, pairs=False).to_arrow()
    c = slice_report(y, s, slices, n_boot=50, seed=5, pairs=False).to_arrow()
    assert a.equals(b)
    assert not a.equals(c)
    inside = [r["ci_low"] <= r["estimate"] <= r["ci_high"] for r in a.to_pylist()]
    assert sum(inside) >= 0.9 * len(inside)


def test_callables_and_registry_metrics_are_evaluated_per_slice() -> None:
    y, s, slices = _noise(400, seed=13)

    def positive_rate(y_true: Any, y_score: Any, sample_weight: Any = None) -> float:
        return float(np.average(y_true, weights=sample_weight))

    report = slice_report(
        y, s, {"device": slices["device"]}, metrics={"rate": positive_rate}, n_boot=20
    )
    for r in report.to_arrow().to_pylist():
        mask = slices["device"] == r["value"]
        assert r["estimate"] == pytest.approx(float(np.mean(y[mask])), abs=1e-15)
        assert r["ci_low"] is not None


def test_ece_from_the_metric_registry_matches_the_metric_on_each_slice() -> None:
    from assay.evaluation._metrics import METRICS as REGISTRY

    y, s, slices = _noise(300, seed=17)
    report = slice_report(y, s, {"device": slices["device"]}, metrics=["ece"], n_boot=0)
    for r in report.to_arrow().to_pylist():
        mask = slices["device"] == r["value"]
        want = REGISTRY["ece"](y[mask], s[mask])
        assert r["estimate"] == pytest.approx(want, abs=1e-12)
    assert not report.higher_is_better["ece"]


def test_renderings_have_the_contract_columns() -> None:
    y, s, slices = _noise(500, seed=19)
    report = slice_report(y, s, slices, n_boot=20, pairs=False)
    table = report.to_arrow()
    assert tuple(table.column_names) == COLUMNS
    assert table.schema.field("flagged").type == pa.bool_()
    assert list(report.to_pandas().columns) == list(COLUMNS)
    md = report.to_markdown()
    assert md.startswith("| feature | value | metric | support |")
    assert md.count("\n") == table.num_rows + 2


def test_html_is_self_contained_with_three_svg_charts() -> None:
    y, s, slices = _noise(3000, seed=1)
    s = s.copy()
    s[slices["device"] == "web"] = np.random.default_rng(0).random(
        int((slices["device"] == "web").sum())
    )
    page = slice_report(y, s, slices, n_boot=40, pairs=False).to_html()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 3
    for title in ("ROC", "Precision-recall", "Reliability"):
        assert f'aria-label="{title}"' in page
    assert "http://" not in page
    assert "https://" not in page
    for tag in ("<script", "<link", "@import", "<img"):
        assert tag not in page
    # The flagged slice is drawn next to all rows in each chart.
    assert len(re.findall(r"<title>device = web</title>", page)) == 3
    assert page.count("<polyline") == 6
    # Each chart is well-formed XML, so a browser draws it as it is.
    for svg in re.findall(r"<svg.*?</svg>", page, flags=re.S):
        ElementTree.fromstring(svg)


def test_bad_arguments_raise_usage_errors() -> None:
    y, s = [0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8]
    with pytest.raises(UsageError, match="slices"):
        slice_report(y, s, {})
    with pytest.raises(UsageError, match="unknown metric"):
        slice_report(y, s, {"a": [1, 1, 2, 2]}, metrics=["auc_roc"])
    with pytest.raises(UsageError, match="min_support"):
        slice_report(y, s, {"a": [1, 1, 2, 2]}, min_support=0)
    with pytest.raises(UsageError, match="alpha"):
        slice_report(y, s, {"a": [1, 1, 2, 2]}, alpha=1.5)
    with pytest.raises(UsageError):
        slice_report(y, [0.1, math.nan, 0.2, 0.8], {"a": [1, 1, 2, 2]})
    with pytest.raises(UsageError):
        slice_report(y, s, {"a": [1, 1, 2]})
    with pytest.raises(UsageError, match="probabilities"):
        slice_report(y, [-1.0, 2.0, 0.5, 0.5], {"a": [1, 1, 2, 2]})
    # Rank metrics take any real scores.
    assert (
        slice_report(y, [-1.0, 2.0, 0.5, 0.7], {"a": [1, 1, 2, 2]}, metrics=["roc_auc"], n_boot=0)
        .to_arrow()
        .num_rows
        == 2
    )


def test_flags_are_benjamini_hochberg_over_the_whole_report() -> None:
    # Reference: scipy's BH adjustment of every p-value in the report (one family), a flag
    # where the adjusted value is at most alpha, the gap is worse and the slice is big enough.
    from scipy.stats import false_discovery_control

    y, s, slices = _noise(3000, seed=13)
    rng = np.random.default_rng(14)
    weak = slices["region"] == "east"
    s = s.copy()
    s[weak] = np.clip(s[weak] + 0.4 * rng.standard_normal(int(weak.sum())), 0, 1)
    alpha = 0.1
    rows = slice_report(y, s, slices, n_boot=80, alpha=alpha, seed=2).to_arrow().to_pylist()
    tested = [r for r in rows if r["p_value"] is not None]
    adjusted = false_discovery_control([r["p_value"] for r in tested], method="bh")
    want = {
        (r["feature"], r["value"], r["metric"])
        for r, q in zip(tested, adjusted, strict=True)
        if q <= alpha and (r["gap"] > 0 if r["metric"] == "brier_score" else r["gap"] < 0)
    }
    got = {(r["feature"], r["value"], r["metric"]) for r in rows if r["flagged"]}
    assert got == want
    assert ("region", "east", "roc_auc") in got  # the planted weak slice is among them
