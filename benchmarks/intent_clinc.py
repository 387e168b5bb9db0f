"""Intent model (tfidf) on CLINC150's full split: quality, training time, ONNX speed.

Protocol (the data set's paper): every choice (C, the OOS threshold) is made on
``val``/``oos_val``; ``test``/``oos_test`` are scored once. Reported: in-scope accuracy and
OOS recall on test for

- ``oos class + threshold``: the model ``assay models train intent`` registers (``oos_train``
  as a class, and the threshold chosen on validation);
- ``oos class``: the same model without the threshold (the paper's *oos-train* column);
- ``threshold only``: trained without ``oos_train`` (the paper's *oos-threshold* column), C
  fixed at the value the first model chose on validation, its threshold chosen on validation.

Speed, in this process: training time (all C of the grid), scoring the whole test part with
scikit-learn's ``predict_proba`` against ONNX Runtime (rows/s, best of 3), and one utterance
per call through :class:`IntentPredictor` (redaction, normalisation, ONNX Runtime), p50/p99
over ``--calls`` calls, the same with ``redact=False``, and the session call alone.

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/intent_clinc.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from assay.models._intent import (
    IntentPredictor,
    normalise,
    parity,
    prepare,
    to_onnx,
    train_intent,
)
from assay.models._intent_data import Split, load_intent_data

DATA = Path(__file__).resolve().parent.parent / "src/assay/data/clinc150/data_full.json"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--json", default="", help="also write the figures to this file")
    args = parser.parse_args()

    ds = load_intent_data(args.data)
    out: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    start = time.perf_counter()
    model = train_intent(ds)
    out["train_seconds"] = time.perf_counter() - start
    out["C"] = model.params["C"]
    out["threshold"] = model.threshold
    out["candidates"] = model.evaluation["candidates"]
    out["vocabulary"] = [model.params["vocabulary_word"], model.params["vocabulary_char"]]
    out["valid"] = model.evaluation["valid"]
    out["test"] = model.evaluation["test"]

    # The paper's oos-threshold setting: no out-of-scope training data.
    inscope = [
        (t, lab) for t, lab in zip(ds.train.texts, ds.train.labels, strict=True) if lab != "oos"
    ]
    no_oos = replace(ds, train=Split([t for t, _ in inscope], [lab for _, lab in inscope]))
    start = time.perf_counter()
    alone = train_intent(no_oos, c_grid=(model.params["C"],))
    out["threshold_only"] = {
        "train_seconds": time.perf_counter() - start,
        "threshold": alone.threshold,
        "valid": alone.evaluation["valid"],
        "test": alone.evaluation["test"],
    }

    test = normalise(ds.test.texts)
    proto = to_onnx(model)
    out["onnx_bytes"] = len(proto.SerializeToString())
    out["onnx_max_abs_diff_test"] = parity(model, proto, test)
    predictor = IntentPredictor(proto)
    best_sk, best_ox = float("inf"), float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        model.predict_proba(test)
        best_sk = min(best_sk, time.perf_counter() - t0)
        t0 = time.perf_counter()
        predictor.probabilities(test)
        best_ox = min(best_ox, time.perf_counter() - t0)
    out["batch_rows"] = len(test)
    out["sklearn_rows_per_s"] = len(test) / best_sk
    out["onnx_rows_per_s"] = len(test) / best_ox

    raw = ds.test.texts
    calls = [raw[i % len(raw)] for i in range(args.calls)]
    for text in calls[:50]:
        predictor.predict([text])
    full, plain, bare = [], [], []
    for text in calls:
        t0 = time.perf_counter()
        predictor.predict([text])
        full.append(time.perf_counter() - t0)
    for text in calls:
        t0 = time.perf_counter()
        predictor.predict([text], redact=False)
        plain.append(time.perf_counter() - t0)
    prepared = [prepare([t]) for t in calls]
    for one in prepared:
        t0 = time.perf_counter()
        predictor.probabilities(one)
        bare.append(time.perf_counter() - t0)
    for key, values in (("predict_ms", full), ("unredacted_ms", plain), ("session_ms", bare)):
        ms = np.asarray(values) * 1000
        out[key] = {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99))}

    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, sort_keys=True), encoding="utf-8")
    _report(out)


def _report(out: dict[str, Any]) -> None:
    t, v = out["test"], out["valid"]
    a, va = out["threshold_only"]["test"], out["threshold_only"]["valid"]
    print(f"C {out['C']:g}, threshold {out['threshold']:.2f} (chosen on val)")
    print(f"train {out['train_seconds']:.1f} s (every C of the grid)")
    head = ["variant", "test in-scope %", "test OOS recall %", "test OOS precision %"]
    head += ["val in-scope %", "val OOS recall %"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    keys = ("in_scope_accuracy", "oos_recall", "oos_precision")
    only = f"threshold only (t {out['threshold_only']['threshold']:.2f})"
    for name, test, val, prefix in (
        ("oos class + threshold", t, v, ""),
        ("oos class", t, v, "class_"),
        (only, a, va, ""),
    ):
        cells = [_pct(test[prefix + k]) for k in keys]
        cells += [_pct(val[prefix + k]) for k in keys[:2]]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"macro-F1 test {t['macro_f1']:.3f}")
    print(f"ONNX max |diff| on test {out['onnx_max_abs_diff_test']:.2e}")
    print(f"ONNX file {out['onnx_bytes'] / 1e6:.1f} MB")
    print(f"batch of {out['batch_rows']}: sklearn {out['sklearn_rows_per_s']:.0f} rows/s")
    print(f"batch of {out['batch_rows']}: ONNX {out['onnx_rows_per_s']:.0f} rows/s")
    for key, what in (
        ("predict_ms", "predict (redact + ONNX)"),
        ("unredacted_ms", "predict(redact=False)"),
        ("session_ms", "session"),
    ):
        ms = out[key]
        print(f"one utterance, {what}: p50 {ms['p50']:.2f} ms, p99 {ms['p99']:.2f} ms")


if __name__ == "__main__":
    main()
