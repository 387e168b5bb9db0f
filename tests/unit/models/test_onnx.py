"""The ONNX export scores exactly as the native model (to 1e-5), for both kinds and both
calibrations, with categorical features, missing values and categories never seen in train."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pyarrow as pa
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from quality_data import quality_table

from assay.models._dataset import feature_columns
from assay.models._leakage import time_split
from assay.models._onnx import OUTPUT, input_names, onnx_scores, session, to_onnx
from assay.models._train import Calibrator, fit_candidate, frequent_categories


@pytest.fixture(scope="module")
def parts():  # type: ignore[no-untyped-def]
    t = quality_table(days=30, rows_per_day=200, seed=2)
    split = time_split(t)
    # Test rows with a locale and a platform never seen in train, and missing values.
    test = split.test
    n = test.num_rows
    locale = test.column("locale").to_pylist()
    platform = test.column("platform").to_pylist()
    for i in range(0, n, 7):
        locale[i] = "zz-NEW"
    for i in range(3, n, 11):
        platform[i] = None
    test = test.set_column(test.column_names.index("locale"), "locale", pa.array(locale))
    test = test.set_column(test.column_names.index("platform"), "platform", pa.array(platform))
    return split._replace(test=test)


@pytest.mark.parametrize("kind", ["logistic", "gbdt"])
@pytest.mark.parametrize("calibration", ["platt", "isotonic"])
def test_onnx_scores_equal_the_native_model(parts, kind: str, calibration: str) -> None:  # type: ignore[no-untyped-def]
    numeric, categorical = feature_columns(parts.train)
    cats = frequent_categories(parts.train, categorical, min_count=20, max_categories=30)
    model = fit_candidate(
        kind,  # type: ignore[arg-type]
        parts,
        numeric,
        categorical,
        cats,
        seed=0,
        n_estimators=80,
        calibration=calibration,  # type: ignore[arg-type]
    ).model
    assert model.calibrator.method == calibration
    proto = to_onnx(model)
    onnx.checker.check_model(proto)
    sess = session(proto)
    assert input_names(sess) == (numeric, categorical)
    native = model.predict_proba(parts.test)
    exported = onnx_scores(sess, parts.test, batch_rows=97)  # several batches, a ragged end
    assert exported.shape == native.shape
    np.testing.assert_allclose(exported, native, atol=1e-5, rtol=0)
    # The scores are probabilities and not all alike (the model did learn something).
    assert exported.min() >= 0.0
    assert exported.max() <= 1.0
    assert np.unique(np.round(native, 6)).size > 3


def test_isotonic_subgraph_interpolates_like_numpy(parts) -> None:  # type: ignore[no-untyped-def]
    numeric, categorical = feature_columns(parts.train)
    cats = frequent_categories(parts.train, categorical, min_count=20, max_categories=30)
    model = fit_candidate(
        "logistic", parts, numeric, categorical, cats, seed=0, n_estimators=1
    ).model
    # Hand-made knots: flat, steep, flat; every raw probability maps by np.interp.
    model.calibrator = Calibrator("isotonic", x=(0.1, 0.2, 0.21, 0.9), y=(0.0, 0.05, 0.5, 0.6))
    sess = session(to_onnx(model))
    raw = model.raw_proba(parts.test)
    expected = np.interp(raw, [0.1, 0.2, 0.21, 0.9], [0.0, 0.05, 0.5, 0.6])
    np.testing.assert_allclose(onnx_scores(sess, parts.test), expected, atol=1e-5)
    assert [o.name for o in sess.get_outputs()] == [OUTPUT]
