"""Training the quality model: preprocessing, calibration, selection, determinism, leakage.

References are independent of the code under test: statsmodels' Logit for Platt scaling,
scikit-learn's IsotonicRegression and average_precision_score, hand-worked frequency caps.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import statsmodels.api as sm
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import average_precision_score

sys.path.insert(0, str(Path(__file__).parent))

from quality_data import quality_table

from assay import UsageError
from assay.evaluation import expected_calibration_error
from assay.models import LeakageError
from assay.models._train import (
    MISSING,
    Calibrator,
    fit_calibrator,
    frequent_categories,
    halves,
    labels_of,
    train_quality,
)


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return quality_table(days=30, rows_per_day=200, seed=1)


@pytest.fixture(scope="module")
def logistic(table: pa.Table):  # type: ignore[no-untyped-def]
    return train_quality(table, model="logistic", seed=0)


def test_frequency_cap_keeps_frequent_categories_and_missing_as_a_category() -> None:
    t = pa.table({"c": ["a"] * 5 + ["b"] * 3 + ["c"] * 1 + [None] * 4 + ["d"] * 5})
    assert frequent_categories(t, ["c"], min_count=3, max_categories=10) == {
        "c": sorted(["a", "b", "d", MISSING])
    }
    # At most 2: the two most frequent, ties broken by value (a before d at 5 rows each).
    assert frequent_categories(t, ["c"], min_count=1, max_categories=2) == {"c": ["a", "d"]}


def test_halves_alternate_within_each_class_and_cover_every_row() -> None:
    y = np.array([True, False, False, True, True, False, False, True])
    cal, sel = halves(y)
    assert cal.tolist() == [0, 1, 4, 5]  # negatives 1, 5; positives 0, 4
    assert sel.tolist() == [2, 3, 6, 7]
    assert sorted([*cal, *sel]) == list(range(8))


def test_platt_scaling_matches_statsmodels_logit() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(scale=2.0, size=4000)  # margins (log-odds)
    y = rng.random(4000) < 1 / (1 + np.exp(-(0.5 * z - 1.0)))
    cal = fit_calibrator("platt", z, y)
    ref = sm.Logit(y.astype(float), sm.add_constant(z)).fit(disp=0).params
    assert cal.b == pytest.approx(ref[0], abs=2e-3)
    assert cal.a == pytest.approx(ref[1], abs=2e-3)
    p = cal.apply(np.array([0.0]))
    assert p[0] == pytest.approx(1 / (1 + np.exp(-ref[0])), abs=1e-3)


def test_isotonic_calibration_is_centred_isotonic_regression() -> None:
    rng = np.random.default_rng(4)
    q = rng.uniform(0.001, 0.999, size=500)
    y = rng.random(500) < q**2
    z = np.log(q / (1 - q))
    cal = fit_calibrator("isotonic", z, y)
    # The reference: scikit-learn's blocks, each replaced by (mean q of its rows, its value).
    fitted = IsotonicRegression(y_min=0, y_max=1).fit_transform(q, y.astype(float))
    blocks: dict[float, list[float]] = {}
    for qi, fi in zip(q, fitted, strict=True):
        blocks.setdefault(float(fi), []).append(float(qi))
    knots = sorted((float(np.mean(v)), f) for f, v in blocks.items())
    assert cal.x == pytest.approx([k[0] for k in knots], abs=1e-12)
    assert cal.y == pytest.approx([k[1] for k in knots], abs=1e-12)
    # Monotone, and equal to the block's value at each knot.
    grid = np.linspace(-8, 8, 301)
    assert np.all(np.diff(cal.apply(grid)) >= 0)
    at_knots = cal.apply(np.log(np.array(cal.x) / (1 - np.array(cal.x))))
    np.testing.assert_allclose(at_knots, cal.y, atol=1e-9)


def test_platt_by_hand() -> None:
    cal = Calibrator("platt", a=2.0, b=-1.0)
    # z = 0 -> sigmoid(-1); z = log 4 -> sigmoid(2 log 4 - 1) = 16/(16+e)
    np.testing.assert_allclose(
        cal.apply(np.array([0.0, np.log(4.0)])), [1 / (1 + np.e), 16 / (16 + np.e)], rtol=1e-12
    )


def test_calibration_lowers_the_calibration_error_of_a_class_weighted_model(logistic) -> None:  # type: ignore[no-untyped-def]
    # Balanced class weights at a ~10% positive rate inflate the raw probabilities.
    model, test = logistic.model, logistic.split.test
    y = labels_of(test)
    raw = model.raw_proba(test)
    calibrated = model.predict_proba(test)
    assert raw.mean() > 2 * y.mean()  # the hand-made miscalibration is there
    ece_raw = expected_calibration_error(y, raw)
    ece_cal = expected_calibration_error(y, calibrated)
    assert ece_cal < 0.05 < ece_raw
    assert abs(calibrated.mean() - y.mean()) < 0.03


def test_auto_picks_the_kind_with_the_higher_validation_pr_auc() -> None:
    # A U-shaped risk that no linear model ranks: LightGBM must win, and say why.
    t = quality_table(days=30, rows_per_day=200, seed=5, u_shape=True, intercept=-2.5)
    result = train_quality(t, model="auto", seed=0, n_estimators=60)
    assert set(result.candidates) == {"logistic", "gbdt"}
    y_valid = labels_of(result.split.valid)
    _, sel = halves(y_valid)
    recomputed = {
        kind: average_precision_score(y_valid[sel], c.model.predict_proba(result.split.valid)[sel])
        for kind, c in result.candidates.items()
    }
    for kind, c in result.candidates.items():
        assert c.valid_pr_auc == pytest.approx(recomputed[kind], abs=1e-12)
    assert recomputed["gbdt"] > recomputed["logistic"] + 0.05
    assert result.model.kind == "gbdt"


def test_training_is_deterministic_for_a_seed(table: pa.Table) -> None:
    a = train_quality(table, model="gbdt", seed=7, n_estimators=30)
    b = train_quality(table, model="gbdt", seed=7, n_estimators=30)
    np.testing.assert_array_equal(
        a.model.predict_proba(a.split.test), b.model.predict_proba(b.split.test)
    )


def test_a_leaky_feature_refuses_training_unless_overridden(table: pa.Table) -> None:
    # A field present only on positive sessions: written after the thumbs-down.
    y = labels_of(table)
    leak = pa.array([1.0 if v else None for v in y], pa.float64())
    meta = dict(table.schema.metadata)
    meta[b"assay.features.numeric"] = meta[b"assay.features.numeric"][:-1] + b', "leak"]'
    leaky = table.append_column("leak", leak).replace_schema_metadata(meta)
    with pytest.raises(LeakageError, match="leak"):
        train_quality(leaky, model="logistic")
    result = train_quality(leaky, model="logistic", allow_leakage=True)
    assert result.leakage.flagged == ["leak"]


def test_unknown_model_kind_is_a_usage_error(table: pa.Table) -> None:
    with pytest.raises(UsageError, match="model must be one of auto, logistic, gbdt"):
        train_quality(table, model="forest")  # type: ignore[arg-type]


def test_a_part_without_positives_is_a_usage_error(table: pa.Table) -> None:
    negatives = table.set_column(
        table.column_names.index("label"), "label", pa.array([False] * table.num_rows)
    )
    with pytest.raises(UsageError, match="0 positive"):
        train_quality(negatives, model="logistic")
