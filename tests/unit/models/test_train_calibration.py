"""Platt scaling never reverses the classifier's ranking.

On the demo workspace the calibration half of the validation days (43 positives) fitted a
negative Platt slope, and the calibrated test ROC-AUC came out 0.43 where the classifier's
own margin ranked at 0.57. A calibration is a monotone increasing map: when the fitted slope
is not positive, the slope stays 1 and only the offset is fitted (reference: statsmodels' GLM
with the margin as an offset).
"""

from __future__ import annotations

import numpy as np
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from assay.models._train import fit_calibrator, platt_offset


def _offset_reference(z: np.ndarray, y: np.ndarray) -> float:
    glm = sm.GLM(y.astype(float), np.ones((z.size, 1)), family=sm.families.Binomial(), offset=z)
    return float(glm.fit().params[0])


def test_a_negative_slope_keeps_the_ranking_and_fits_the_offset() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(size=400)
    # Positives where the margin is LOW: an unconstrained Platt fit has a negative slope.
    y = rng.random(400) < np.where(z < 0, 0.3, 0.05)
    cal = fit_calibrator("platt", z, y)
    assert (cal.a, cal.method) == (1.0, "platt")
    assert abs(cal.b - _offset_reference(z, y)) < 1e-6
    p = cal.apply(z)
    order = np.argsort(z)
    assert np.all(np.diff(p[order]) >= 0)
    # The offset makes the scores' mean the positive rate (the likelihood equation).
    assert abs(p.mean() - y.mean()) < 1e-9


def test_a_positive_slope_is_fitted_as_before() -> None:
    z = np.array([-2.0, -1.0, 0.0, 1.0, 2.0, -2.0, -1.0, 0.0, 1.0, 2.0])
    y = np.array([0, 0, 0, 1, 1, 0, 1, 0, 1, 1], dtype=bool)
    cal = fit_calibrator("platt", z, y)
    ref = sm.Logit(y.astype(float), sm.add_constant(z)).fit(disp=0).params
    assert cal.a > 0
    assert abs(cal.a - ref[1]) < 1e-3
    assert abs(cal.b - ref[0]) < 1e-3


def test_offset_of_a_constant_margin_is_the_log_odds_by_hand() -> None:
    # sigmoid(0 + b) = 1/4  =>  b = log(1/3).
    assert (
        abs(platt_offset(np.zeros(8), np.array([1, 0, 0, 0, 1, 0, 0, 0], bool)) - np.log(1 / 3))
        < 1e-9
    )


@settings(max_examples=40, deadline=None)
@given(
    z=arrays(np.float64, 30, elements=st.floats(-8, 8)),
    bits=arrays(np.bool_, 30),
)
def test_platt_is_never_decreasing_in_the_margin(z: np.ndarray, bits: np.ndarray) -> None:
    y = bits.copy()
    y[0], y[1] = True, False  # both classes
    cal = fit_calibrator("platt", z, y)
    assert cal.a > 0
    grid = np.linspace(-10, 10, 201)
    assert np.all(np.diff(cal.apply(grid)) >= 0)
