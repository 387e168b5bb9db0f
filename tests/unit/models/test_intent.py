"""Intent models on the shipped CLINC150 subset: choices on validation only, the threshold
rule against a brute-force reference, ONNX parity with scikit-learn, predictions."""

from __future__ import annotations

import copy
import json
from importlib.resources import files
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from assay import UsageError
from assay.models._intent import (
    THRESHOLDS,
    IntentModel,
    IntentPredictor,
    apply_threshold,
    choose_threshold,
    normalise,
    oos_scores,
    parity,
    to_onnx,
    train_intent,
)
from assay.models._intent_data import load_intent_data

SMALL = files("assay") / "data" / "clinc150" / "data_small.json"


def small_data() -> dict[str, Any]:
    return json.loads(SMALL.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def model() -> IntentModel:
    return train_intent(small_data())


# -- the metrics, hand-worked ---------------------------------------------------------------


def test_oos_scores_hand_worked() -> None:
    truth = ["a", "a", "b", "oos", "oos", "oos"]
    pred = ["a", "oos", "a", "oos", "b", "oos"]
    # in scope: a->a right, a->oos wrong, b->a wrong: 1/3; OOS recall 2/3; said oos 3 times,
    # 2 of them OOS: precision 2/3.
    assert oos_scores(truth, pred, "oos") == pytest.approx(
        {"in_scope_accuracy": 1 / 3, "oos_recall": 2 / 3, "oos_precision": 2 / 3}
    )


def test_apply_threshold_labels_low_confidence_rows_oos() -> None:
    proba = np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25], [0.1, 0.1, 0.8]])
    classes = ["a", "b", "oos"]
    assert apply_threshold(proba, classes, 0.0, "oos") == ["a", "a", "oos"]
    assert apply_threshold(proba, classes, 0.5, "oos") == ["a", "oos", "oos"]
    # A probability equal to the threshold is kept (below means strictly below).
    assert apply_threshold(proba, classes, 0.4, "oos") == ["a", "a", "oos"]


def test_choose_threshold_takes_the_best_recall_within_the_accuracy_budget() -> None:
    curve = [
        {"threshold": 0.0, "in_scope_accuracy": 0.90, "oos_recall": 0.1},
        {"threshold": 0.1, "in_scope_accuracy": 0.895, "oos_recall": 0.4},
        {"threshold": 0.2, "in_scope_accuracy": 0.89, "oos_recall": 0.4},
        {"threshold": 0.3, "in_scope_accuracy": 0.88, "oos_recall": 0.5},
    ]
    # 0.89 is within one point of 0.90, 0.88 is not; 0.1 and 0.2 tie on recall: the lower.
    assert choose_threshold(curve, 0.01) == (0.1, pytest.approx(1.295))
    assert choose_threshold(curve, 0.02) == (0.3, pytest.approx(1.38))
    assert choose_threshold(curve, 0.0) == (0.0, pytest.approx(1.0))
    nan = float("nan")
    no_oos = [{"threshold": t, "in_scope_accuracy": 0.9 - t, "oos_recall": nan} for t in (0, 0.5)]
    assert choose_threshold(no_oos) == (0.0, pytest.approx(0.9))


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "oos"]), st.sampled_from(["a", "b", "oos"])),
        min_size=1,
        max_size=40,
    )
)
def test_oos_scores_match_a_counting_reference(pairs: list[tuple[str, str]]) -> None:
    truth = [t for t, _ in pairs]
    pred = [p for _, p in pairs]
    got = oos_scores(truth, pred, "oos")
    inscope = [(t, p) for t, p in pairs if t != "oos"]
    oos = [p for t, p in pairs if t == "oos"]
    said = [t for t, p in pairs if p == "oos"]
    ref = {
        "in_scope_accuracy": sum(t == p for t, p in inscope) / len(inscope) if inscope else None,
        "oos_recall": sum(p == "oos" for p in oos) / len(oos) if oos else None,
        "oos_precision": sum(t == "oos" for t in said) / len(said) if said else None,
    }
    for key, value in ref.items():
        if value is None:
            assert np.isnan(got[key])
        else:
            assert got[key] == pytest.approx(value)


# -- training: choices on validation only ------------------------------------------------------


@pytest.mark.parametrize("drop", [0.0, 0.05, 0.2])
def test_threshold_is_the_brute_force_choice_on_validation(drop: float) -> None:
    model = train_intent(small_data(), c_grid=(10.0,), max_in_scope_drop=drop)
    ds = load_intent_data(small_data())
    proba = model.predict_proba(normalise(ds.valid.texts))

    def point(t: float) -> tuple[float, float]:  # plain loops: (in-scope accuracy, recall)
        right = oos_hit = n_in = n_oos = 0
        for row, truth in zip(proba, ds.valid.labels, strict=True):
            k = int(np.argmax(row))
            label = "oos" if row[k] < t else model.classes[k]
            if truth == "oos":
                n_oos += 1
                oos_hit += label == "oos"
            else:
                n_in += 1
                right += label == truth
        return right / n_in, oos_hit / n_oos

    base = point(0.0)[0]
    allowed = [(t, *point(t)) for t in THRESHOLDS if point(t)[0] >= base - drop - 1e-12]
    best_recall = max(r for _, _, r in allowed)
    expected = min(t for t, _, r in allowed if r == best_recall)
    assert model.threshold == expected
    assert model.evaluation["valid"]["oos_recall"] == pytest.approx(best_recall)
    assert model.evaluation["valid"]["in_scope_accuracy"] >= base - drop - 1e-12


def test_the_test_split_is_never_read_for_a_choice(model: IntentModel) -> None:
    data = small_data()
    perturbed = copy.deepcopy(data)
    rng = np.random.default_rng(1)
    labels = [label for _, label in perturbed["test"]]
    rng.shuffle(labels)
    perturbed["test"] = [
        [text[::-1], lab] for (text, _), lab in zip(data["test"], labels, strict=True)
    ]
    perturbed["oos_test"] = perturbed["oos_test"][:3]
    other = train_intent(perturbed)
    assert other.params["C"] == model.params["C"]
    assert other.threshold == model.threshold
    assert {c: v["threshold"] for c, v in other.evaluation["candidates"].items()} == {
        c: v["threshold"] for c, v in model.evaluation["candidates"].items()
    }
    assert other.evaluation["valid"] == model.evaluation["valid"]
    assert other.evaluation["test"] != model.evaluation["test"]


def test_the_small_subset_trains_a_useful_model(model: IntentModel) -> None:
    intents = ["change_speed", "current_location", "food_last", "freeze_account", "plug_type"]
    intents += ["pto_request_status", "replacement_card_duration", "weather", "what_song"]
    assert sorted(model.classes) == sorted([*intents, "who_made_you", "oos"])
    assert model.params["oos_class"] is True
    assert 0 <= model.threshold < 1
    test = model.evaluation["test"]
    assert test["rows"] == 60  # 10 intents x 4 + 20 out of scope
    # Chance is 1/11; the paper's weakest full-data classifier is near 0.89.
    assert test["in_scope_accuracy"] >= 0.6
    assert test["oos_recall"] >= 0.5
    # The threshold can only add OOS answers: recall never drops below the class-only one.
    assert test["oos_recall"] >= test["class_oos_recall"]


def test_the_curve_is_stored_for_every_threshold(model: IntentModel) -> None:
    curve = model.evaluation["curve"]
    assert [row["threshold"] for row in curve] == list(THRESHOLDS)
    recall = [row["oos_recall"] for row in curve]
    accuracy = [row["in_scope_accuracy"] for row in curve]
    assert recall == sorted(recall)  # a higher threshold flags more
    assert accuracy == sorted(accuracy, reverse=True)


def test_an_unknown_encoder_is_refused() -> None:
    with pytest.raises(UsageError, match="encoder must be 'tfidf'"):
        train_intent(small_data(), encoder="bert")  # type: ignore[arg-type]


# -- ONNX ----------------------------------------------------------------------------------------


def test_onnx_probabilities_equal_scikit_learns_on_the_test_part(model: IntentModel) -> None:
    ds = load_intent_data(small_data())
    texts = normalise(ds.test.texts)
    proto = to_onnx(model)
    native = model.pipeline.predict_proba(texts)
    exported = IntentPredictor(proto).probabilities(texts)
    assert exported.shape == (60, 11)
    np.testing.assert_allclose(exported, native, atol=1e-5, rtol=0)
    assert parity(model, proto, texts) <= 1e-5
    assert list(model.pipeline.classes_[exported.argmax(axis=1)]) == list(
        model.pipeline.predict(texts)
    )


@pytest.mark.parametrize(
    "text",
    [
        "What's The WEATHER in Paris?!",
        "  change   the\tspeed\n please ",
        "plug type for the uk, 3 pins (g)",
        "x",
        "",
        "who_made_you 123 456",
        "İstanbul Café ÉTÉ Straße 東京 😀",
    ],
)
def test_onnx_matches_scikit_learn_on_tricky_texts(model: IntentModel, text: str) -> None:
    predictor = IntentPredictor(to_onnx(model))
    prepared = normalise([text])
    np.testing.assert_allclose(
        predictor.probabilities(prepared), model.pipeline.predict_proba(prepared), atol=1e-5
    )


def test_predict_gives_label_probability_and_sorted_top_k(model: IntentModel) -> None:
    predictor = IntentPredictor(to_onnx(model))
    texts = ["what is the weather like in boston today", "zzz qqq"]
    out = predictor.predict(texts, top_k=3)
    proba = model.pipeline.predict_proba(normalise(texts))
    for pred, row in zip(out, proba, strict=True):
        assert [k for k, _ in pred.top_k] == [model.classes[i] for i in np.argsort(-row)[:3]]
        assert pred.probability == pytest.approx(row.max(), abs=1e-5)
        expected = "oos" if row.max() < model.threshold else model.classes[int(np.argmax(row))]
        assert pred.label == expected
    assert out[0].label == "weather"
    assert out[0].to_dict()["top_k"][0] == {"label": "weather", "probability": out[0].probability}
    with pytest.raises(UsageError, match="top_k must be >= 1"):
        predictor.predict(texts, top_k=0)


def test_a_non_intent_onnx_model_is_refused() -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(UsageError, match="not an assay intent model"):
        IntentPredictor(proto.SerializeToString())
