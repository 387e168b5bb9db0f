"""CBPE: the estimates against an exhaustive enumeration of the labels (small sets), against
realised metrics of labels drawn with known calibration (Monte Carlo with scikit-learn), and a
planted drop."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, roc_auc_score

from assay.models._monitor import (
    drops,
    estimate,
    expected_average_precision,
    expected_precision,
    expected_roc_auc,
)


def _enumerate(p: list[float], s: list[float]) -> tuple[float, float, float, float]:
    """E[concordant pairs], E[pairs], E[AP numerator], E[positives] over every label vector."""
    n = len(p)
    e_conc = e_pairs = e_ap = e_pos = 0.0
    order = sorted(range(n), key=lambda i: -s[i])
    for y in itertools.product([0, 1], repeat=n):
        w = float(np.prod([pi if yi else 1 - pi for pi, yi in zip(p, y, strict=True)]))
        if w == 0.0:
            continue
        for i in range(n):
            for j in range(n):
                if i != j and y[i] == 1 and y[j] == 0:
                    e_pairs += w
                    e_conc += w * (1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0)
        # Average precision's numerator: at each distinct score, (positives at it) * precision.
        tp = seen = 0
        k = 0
        while k < n:
            group = [i for i in order if s[i] == s[order[k]]]
            seen += len(group)
            hits = sum(y[i] for i in group)
            tp += hits
            e_ap += w * hits * tp / seen
            k += len(group)
        e_pos += w * sum(y)
    return e_conc, e_pairs, e_ap, e_pos


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.05, 0.1, 0.3, 0.5, 0.9, 1.0]),
            st.integers(0, 3),
        ),
        min_size=2,
        max_size=7,
    )
)
def test_estimates_equal_the_ratio_of_expectations_by_enumeration(rows) -> None:  # type: ignore[no-untyped-def]
    p = [r[0] for r in rows]
    s = [float(r[1]) for r in rows]  # a ranking with ties, not the probabilities themselves
    e_conc, e_pairs, e_ap, e_pos = _enumerate(p, s)
    auc = expected_roc_auc(p, s)
    if e_pairs < 1e-12:
        assert auc is None
    else:
        assert auc == pytest.approx(e_conc / e_pairs, abs=1e-9)
    ap = expected_average_precision(p, s)
    if e_pos == 0:
        assert ap is None
    else:
        assert ap == pytest.approx(e_ap / e_pos, abs=1e-9)


def test_hand_worked_values() -> None:
    # Constant scores: every pair is a tie (AUC 1/2); AP = (1 + n c - c) / n for n sessions of c.
    assert expected_roc_auc([0.1] * 10) == pytest.approx(0.5)
    assert expected_average_precision([0.1] * 10) == pytest.approx((1 + 1.0 - 0.1) / 10)
    assert expected_precision([0.9, 0.6, 0.2, 0.1], 0.6) == pytest.approx(0.75)
    assert expected_precision([0.2], 0.5) is None
    out = estimate([0.9, 0.6, 0.2, 0.1], 0.6)
    assert out["alert_rate"] == 0.5
    assert out["expected_positives"] == pytest.approx(1.8)


def test_estimates_match_realised_metrics_of_calibrated_labels() -> None:
    """Labels drawn as Bernoulli(p): the CBPE estimate sits at the centre of the realised
    metrics' sampling distribution (Monte Carlo, scikit-learn's metrics)."""
    rng = np.random.default_rng(7)
    p = rng.beta(0.6, 14.0, size=4000)  # about 4% positive, calibrated by construction
    threshold = float(np.quantile(p, 0.95))
    draws = 300
    auc, ap, prec = np.empty(draws), np.empty(draws), np.empty(draws)
    alerted = p >= threshold
    for k in range(draws):
        y = rng.random(p.size) < p
        auc[k] = roc_auc_score(y, p)
        ap[k] = average_precision_score(y, p)
        prec[k] = y[alerted].mean()
    est = estimate(p, threshold)
    for name, values in (("roc_auc", auc), ("average_precision", ap), ("precision", prec)):
        sd = values.std(ddof=1)
        # The estimate is within a quarter of a sampling sd of the Monte Carlo mean (whose own
        # error is sd / sqrt(300), under 0.06 sd), so inside any realised value's band.
        assert abs(est[name] - values.mean()) < 0.25 * sd, (name, est[name], values.mean(), sd)
        low, high = np.quantile(values, [0.005, 0.995])
        assert low < est[name] < high


def test_a_planted_drop_is_estimated_and_flagged() -> None:
    """The deployed model's scores lose their spread (it no longer separates sessions): the
    estimated ROC-AUC and PR-AUC fall, with no label, and both drops are flagged."""
    rng = np.random.default_rng(3)
    before = rng.beta(0.6, 14.0, size=3000)
    after = np.clip(before.mean() + 0.1 * (before - before.mean()), 0, 1)
    ref, now = estimate(before, None), estimate(after, None)
    # The realised reference (labels drawn once from the calibrated scores).
    y = rng.random(before.size) < before
    reference = {
        "roc_auc": roc_auc_score(y, before),
        "average_precision": average_precision_score(y, before),
    }
    assert abs(ref["roc_auc"] - reference["roc_auc"]) < 0.03
    assert now["roc_auc"] < reference["roc_auc"] - 0.05
    found = drops(reference, now)
    assert [d["metric"] for d in found] == ["roc_auc", "average_precision"]
    assert drops(reference, ref) == []
