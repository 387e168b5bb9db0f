"""Intent models in the MLflow registry: a round trip, predictions from the registered ONNX
export, nothing of a redacted address anywhere in the store, and the CLI command."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from assay.cli import app
from assay.models._intent import (
    IntentOutcome,
    IntentPredictor,
    normalise,
    predict_intent,
    register_intent,
    train_intent,
)
from assay.models._intent_data import load_intent_data
from assay.models._registry import Registry

SMALL = files("assay") / "data" / "clinc150" / "data_small.json"
EMAIL = "jane.roe.4821@example.org"


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped subset as JSONL, an address written into five weather utterances (enough
    for min_df to keep its n-grams, were they not redacted)."""
    small = json.loads(SMALL.read_text(encoding="utf-8"))
    rows = [{"text": t, "label": lab} for t, lab in small["train"] + small["val"] + small["test"]]
    rows += [{"text": t, "label": "oos"} for t, _ in small["oos_train"] + small["oos_val"]]
    weather = [r for r in rows if r["label"] == "weather"]
    for r in weather[:5]:
        r["text"] = f"{r['text']} and mail it to {EMAIL}"
    path = tmp_path_factory.mktemp("intent") / "intents.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def registered(
    tmp_path_factory: pytest.TempPathFactory, data_file: Path
) -> tuple[Registry, IntentOutcome]:
    reg = Registry(tmp_path_factory.mktemp("ws"))
    ds = load_intent_data(data_file)
    model = train_intent(ds, c_grid=(10.0,))
    outcome = register_intent(reg, model, "intent", parity_texts=normalise(ds.test.texts))
    return reg, outcome


def test_round_trip_params_metrics_tags(registered: tuple[Registry, IntentOutcome]) -> None:
    reg, outcome = registered
    assert str(outcome.version) == "intent/1"
    shown = reg.show("intent")
    model = outcome.model
    assert shown["params"]["threshold"] == str(model.threshold)
    assert shown["params"]["C"] == "10.0"
    assert shown["params"]["layout"] == "jsonl"
    assert json.loads(shown["tags"]["assay.labels"]) == model.classes
    assert shown["tags"]["assay.kind"] == "intent"
    metrics = shown["metrics"]
    for part in ("valid", "test"):
        for key in ("in_scope_accuracy", "oos_recall", "oos_precision", "macro_f1"):
            assert metrics[f"{part}_{key}"] == pytest.approx(model.evaluation[part][key])
    assert metrics["onnx_max_abs_diff"] <= 1e-5
    listed = reg.list().to_pylist()
    assert [(r["name"], r["version"], r["kind"]) for r in listed] == [("intent", 1, "intent")]


def test_predict_intent_from_the_registry_matches_scikit_learn(
    registered: tuple[Registry, IntentOutcome],
) -> None:
    reg, outcome = registered
    texts = ["is it going to rain tomorrow", "how do i freeze my bank account", "tell me a joke"]
    out = predict_intent("intent/1", texts, registry=reg, top_k=2)
    proba = outcome.model.pipeline.predict_proba(normalise(texts))
    classes = outcome.model.classes
    for pred, row in zip(out, proba, strict=True):
        assert set(pred) == {"label", "probability", "top_k"}
        assert [k["label"] for k in pred["top_k"]] == [classes[i] for i in np.argsort(-row)[:2]]
        assert pred["probability"] == pytest.approx(row.max(), abs=1e-5)
    assert out[0]["label"] == "weather"
    assert out[1]["label"] == "freeze_account"
    _, raw = reg.load_onnx("intent")
    assert IntentPredictor(raw).threshold == outcome.model.threshold


def test_a_redacted_address_reaches_no_stored_byte(
    registered: tuple[Registry, IntentOutcome],
) -> None:
    reg, outcome = registered
    vocab = outcome.model.pipeline.named_steps["features"].transformer_list[1][1].vocabulary_
    assert "<ema" in vocab  # the placeholder was learnt: the utterances were kept, redacted
    needles = [EMAIL.encode(), b"jane.roe", b"4821@", b"example.org"]
    stored = [p for p in reg.workspace.rglob("*") if p.is_file()]
    assert any(p.suffix == ".onnx" for p in stored)
    for path in stored:
        content = path.read_bytes()
        for needle in needles:
            assert needle not in content, path.name
    # The export stores character n-grams as separate characters, so the bytes above cannot
    # show them: the vocabulary the export is built from holds none of the address either.
    word = outcome.model.pipeline.named_steps["features"].transformer_list[0][1].vocabulary_
    assert "email" in word
    for term in ("jane", "roe", "4821", "jane roe", "roe 4821"):
        assert term not in word
    for gram in ("jane", "4821", "e.ro", "1@ex"):
        assert gram not in vocab
    _, raw = reg.load_onnx("intent")
    assert b"email" in raw
    assert EMAIL.encode() not in raw


def test_cli_trains_and_registers_an_intent_model(tmp_path: Path) -> None:
    runner = CliRunner()
    ws = tmp_path / "ws"
    assert runner.invoke(app, ["init", "-w", str(ws)]).exit_code == 0
    result = runner.invoke(
        app,
        ["models", "train", "intent", "--data", str(SMALL), "-w", str(ws), "-f", "json"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["model"] == "intent/1"
    assert summary["labels"] == 11
    assert summary["onnx_max_abs_diff"] <= 1e-5
    assert summary["test"]["rows"] == 60
    result = runner.invoke(app, ["models", "train", "intent", "-w", str(ws)])
    assert result.exit_code == 2
    assert "needs --data FILE" in result.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("utterance,label\nsomething private,a\n")
    result = runner.invoke(app, ["models", "train", "intent", "--data", str(bad), "-w", str(ws)])
    assert result.exit_code == 2
    assert "missing: text" in result.stderr
    assert "something private" not in result.stderr
