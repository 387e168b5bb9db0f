"""LightGBM's ONNX export scores as the native model on telemetry of the demo's kind.

The failure this guards against: LightGBM splits on double thresholds, ONNX's tree ensemble
holds float32 ones; a threshold rounded to the *nearest* float32 sends the inputs between it
and the double the other way. On synthetic telemetry (latencies, token counts, rates) with
several hundred trees that happened often enough to put scores 1e-4 off, and training refused
to register the model. The export rounds thresholds down instead (exact for float32 inputs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import assay.models._onnx as onnx_mod
import assay.models._train as train_mod
from assay._api import Workspace
from assay.ingest import ingest_paths
from assay.models._dataset import feature_columns
from assay.models._leakage import time_split
from assay.models._onnx import float32_threshold, onnx_scores, session, to_onnx
from assay.models._train import fit_candidate, frequent_categories
from assay.synth import SynthConfig, write

F32_MAX = float(np.finfo(np.float32).max)


@given(
    t=st.floats(allow_nan=False, allow_infinity=False),
    x=st.floats(width=32, allow_nan=False, allow_infinity=False),
)
def test_rounded_down_threshold_splits_float32_inputs_as_the_double(t: float, x: float) -> None:
    f = float32_threshold(t)
    assert (x <= t) == (x <= f)
    # It is a float32 (or -inf below the float32 range), never above t.
    assert f <= t
    assert f == -np.inf or float(np.float32(f)) == f


@given(x=st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_a_float32_threshold_is_kept(x: float) -> None:
    assert float32_threshold(x) == x


def test_threshold_examples_worked_by_hand() -> None:
    # 0.1 is not a float32; its nearest float32 is 0.100000001490116..., above it.
    assert float32_threshold(0.1) == float(np.nextafter(np.float32(0.1), np.float32(0)))
    assert float32_threshold(0.1) == 0.09999999403953552
    assert float32_threshold(0.25) == 0.25
    assert float32_threshold(1e300) == F32_MAX
    assert float32_threshold(-1e300) == -np.inf


@pytest.fixture(scope="module")
def synth_split(tmp_path_factory):  # type: ignore[no-untyped-def]
    root: Path = tmp_path_factory.mktemp("gbdt_parity")
    write(root / "data", SynthConfig(tenants=6, users=80, days=40, seed=11), format="parquet")
    with Workspace.open(root / "ws", create=True) as ws:
        ingest_paths(ws, [root / "data"])
        table = ws.models.dataset("thumbs_down")
    return time_split(table)


def _gbdt(split):  # type: ignore[no-untyped-def]
    numeric, categorical = feature_columns(split.train)
    cats = frequent_categories(split.train, categorical, min_count=20, max_categories=30)
    return fit_candidate(
        "gbdt", split, numeric, categorical, cats, seed=0, n_estimators=400, calibration="platt"
    ).model


def test_gbdt_export_on_synth_telemetry_matches_to_1e5(synth_split, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    test = synth_split.test
    current = _gbdt(synth_split)
    np.testing.assert_allclose(
        onnx_scores(session(to_onnx(current)), test), current.predict_proba(test), atol=1e-5, rtol=0
    )
    # The shape that met the failure (4 leaves, balanced class weights): exported to 1e-5 ...
    build = train_mod.build_pipeline
    monkeypatch.setattr(train_mod, "GBDT_CLASS_WEIGHT", "balanced")
    monkeypatch.setattr(
        train_mod, "build_pipeline", lambda *a, **k: build(*a, **{**k, "num_leaves": 4})
    )
    model = _gbdt(synth_split)
    native = model.predict_proba(test)
    exported = onnx_scores(session(to_onnx(model)), test)
    np.testing.assert_allclose(exported, native, atol=1e-5, rtol=0)
    # ... and the data does reproduce the failure: with thresholds rounded to the nearest
    # float32 (the converter's own rounding), some scores are off by more than 1e-5.
    monkeypatch.setattr(onnx_mod, "float32_threshold", lambda t: t)
    nearest = onnx_scores(session(to_onnx(model)), test)
    assert np.abs(nearest - native).max() > 1e-5
