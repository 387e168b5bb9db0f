"""ONNX Runtime sessions with one intra-op thread (what the server uses) score exactly as the
default session does, and a predictor on a session already made equals one made from bytes."""

from __future__ import annotations

import json
import sys
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from quality_data import quality_table

from assay import UsageError
from assay.models._intent import IntentPredictor, prepare, to_onnx, train_intent
from assay.models._onnx import onnx_scores, session
from assay.models._onnx import to_onnx as quality_to_onnx
from assay.models._train import train_quality

SMALL = files("assay") / "data" / "clinc150" / "data_small.json"


def test_one_thread_scores_equal_the_default_sessions_for_a_quality_model() -> None:
    table = quality_table(days=30, rows_per_day=120, seed=5)
    model = train_quality(table, model="logistic").model
    raw = quality_to_onnx(model).SerializeToString()
    default = onnx_scores(session(raw), table)
    single = onnx_scores(session(raw, threads=1), table)
    np.testing.assert_array_equal(single, default)
    # ... and equal the native model's (to the export's 1e-5).
    np.testing.assert_allclose(single, model.predict_proba(table), atol=1e-5)


def test_a_predictor_from_a_session_equals_one_from_bytes() -> None:
    data = json.loads(SMALL.read_text(encoding="utf-8"))
    raw = to_onnx(train_intent(data, c_grid=(10.0,))).SerializeToString()
    texts = [t for t, _ in data["test"][:40]]
    from_bytes = IntentPredictor(raw)
    from_session = IntentPredictor.from_session(session(raw, threads=1))
    assert (from_session.classes, from_session.threshold, from_session.oos_label) == (
        from_bytes.classes,
        from_bytes.threshold,
        from_bytes.oos_label,
    )
    np.testing.assert_array_equal(
        from_session.probabilities(prepare(texts)), from_bytes.probabilities(prepare(texts))
    )
    assert [p.label for p in from_session.predict(texts)] == [
        p.label for p in from_bytes.predict(texts)
    ]


@pytest.mark.parametrize("threads", [-1, 1.5, True, "2"])
def test_bad_thread_counts_are_refused(threads: object) -> None:
    with pytest.raises(UsageError, match="threads must be a whole number >= 0"):
        session(b"", threads=threads)  # type: ignore[arg-type]
