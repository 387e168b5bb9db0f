"""A small predictions file to evaluate: a handoff model that is worse in one locale.

The examples are sessions of the synthetic world's tenants; the label says whether the session
was handed off to a human, and the score is a model's estimate of it. The score is a logistic
function of a Gaussian signal whose separation between the classes is ``d`` in every slice but
one locale, where it is smaller: there the model ranks worse, and an evaluation by locale should
flag that slice (its expected ROC AUC is ``Phi(d / sqrt(2))`` for an equal-variance Gaussian
signal).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa

from assay.synth import _world as w
from assay.synth._world import World, rng_for

STREAM_PREDICTIONS = 5
#: Rows of the predictions file.
PREDICTION_ROWS = 3000
#: Share of positive labels (handed-off sessions; enriched above the event data's 4%, as an
#: evaluation set would be, so that every slice holds positives).
POSITIVE_RATE = 0.2
#: Separation (in standard deviations) of the score's signal between the classes, and in the
#: worse locale.
SEPARATION = 2.0
WORSE_SEPARATION = 0.6
#: The locale where the model is worse: the second most common one, so that the slice is
#: large enough to be judged (about a sixth of the rows).
WORSE_LOCALE = w.LOCALES[1]


def _auc(separation: float) -> float:
    """ROC AUC of an equal-variance Gaussian signal: Phi(d / sqrt(2))."""
    return 0.5 * (1.0 + math.erf(separation / 2.0))


def predictions(world: World) -> pa.Table:
    """The predictions table of ``world``: one row per example, in a fixed order.

    Columns: ``example_id`` (``ex-00000``...), ``tenant_id``, ``locale``, ``platform``,
    ``y_true`` (0 or 1) and ``y_score`` (in (0, 1), rounded to 4 decimals).
    """
    rng = rng_for(world.config, STREAM_PREDICTIONS)
    n = PREDICTION_ROWS
    users = rng.integers(0, len(world.user_tenant), n)
    locale = world.user_locale[users]
    y = (rng.random(n) < POSITIVE_RATE).astype(np.int64)
    worse = locale == w.LOCALES.index(WORSE_LOCALE)
    separation = np.where(worse, WORSE_SEPARATION, SEPARATION)
    signal = (y - 0.5) * separation + rng.normal(0.0, 1.0, n)
    # Centre the logit on the base rate so that scores look like probabilities.
    logit = signal + math.log(POSITIVE_RATE / (1.0 - POSITIVE_RATE))
    score = np.round(1.0 / (1.0 + np.exp(-logit)), 4)
    return pa.table(
        {
            "example_id": pa.array([f"ex-{i:05d}" for i in range(n)], pa.string()),
            "tenant_id": pa.array([world.tenant_ids[t] for t in world.user_tenant[users]]),
            "locale": pa.array([w.LOCALES[i] for i in locale], pa.string()),
            "platform": pa.array([w.PLATFORMS[i] for i in world.user_platform[users]]),
            "y_true": pa.array(y, pa.int64()),
            "y_score": pa.array(score, pa.float64()),
        }
    )


def predictions_truth() -> dict[str, Any]:
    """What ``truth.json`` says about the predictions file (see the package docstring)."""
    good, bad = _auc(SEPARATION), _auc(WORSE_SEPARATION)
    return {
        "rows": PREDICTION_ROWS,
        "label": "y_true",
        "score": "y_score",
        "positive_rate": POSITIVE_RATE,
        "separation": SEPARATION,
        "worse_slice": {"locale": WORSE_LOCALE},
        "worse_separation": WORSE_SEPARATION,
        "expected_roc_auc": round(good, 4),
        "expected_roc_auc_worse_slice": round(bad, 4),
        "expected": (
            f"a handoff model with ROC AUC about {good:.2f} in every slice but locale "
            f"{WORSE_LOCALE}, where it is about {bad:.2f}: an evaluation by locale flags "
            f"{WORSE_LOCALE}"
        ),
    }
