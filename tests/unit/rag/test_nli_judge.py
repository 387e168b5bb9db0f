"""The NLI cross-encoder judge on a tiny ONNX model built here with ``onnx.helper`` and a
word-level ``tokenizer.json`` built with ``tokenizers`` (no download).

The model: ``logits = sum_l mask_l * (1 + type_l) * E[id_l]`` over labels (contradiction,
neutral, entailment): "yes" adds 2 to entailment, "no" 2 to contradiction, a hypothesis token
(type 1) counting twice. Expected probabilities below are worked by hand from that formula.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from assay import UsageError
from assay.rag._nli import NLIJudge

VOCAB = {"[UNK]": 0, "[PAD]": 1, "[CLS]": 2, "[SEP]": 3, "yes": 4, "no": 5, "paris": 6}


def write_model(root: Path, *, max_length: int = 64, type_ids: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.WordLevel(VOCAB, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    tok.enable_padding(pad_id=1, pad_token="[PAD]")
    tok.save(str(root / "tokenizer.json"))

    emb = np.zeros((len(VOCAB), 3), dtype=np.float32)
    emb[VOCAB["yes"], 2] = 2.0
    emb[VOCAB["no"], 0] = 2.0
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["N", "L"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["N", "L"]),
    ]
    nodes = [
        helper.make_node("Gather", ["E", "input_ids"], ["g"]),
        helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
    ]
    if type_ids:
        inputs.append(
            helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ["N", "L"])
        )
        nodes += [
            helper.make_node("Cast", ["token_type_ids"], ["t"], to=TensorProto.FLOAT),
            helper.make_node("Add", ["t", "one"], ["t1"]),
            helper.make_node("Mul", ["m", "t1"], ["w"]),
        ]
    else:
        nodes.append(helper.make_node("Identity", ["m"], ["w"]))
    nodes += [
        helper.make_node("Unsqueeze", ["w", "last"], ["w3"]),
        helper.make_node("Mul", ["g", "w3"], ["gw"]),
        helper.make_node("ReduceSum", ["gw", "tokens"], ["logits"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-nli",
        inputs,
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        initializer=[
            numpy_helper.from_array(emb, "E"),
            numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"),
            numpy_helper.from_array(np.array([-1], dtype=np.int64), "last"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "tokens"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (root / "model.onnx").write_bytes(model.SerializeToString())
    config = {
        "id2label": {"0": "CONTRADICTION", "1": "NEUTRAL", "2": "ENTAILMENT"},
        "max_position_embeddings": max_length,
    }
    (root / "config.json").write_text(json.dumps(config))
    return root


def softmax_at(logits: list[float], k: int) -> float:
    return math.exp(logits[k]) / sum(math.exp(x) for x in logits)


def test_entailment_probability_and_verdicts_match_the_hand_worked_logits(
    tmp_path: Path,
) -> None:
    judge = NLIJudge(write_model(tmp_path / "m"))
    j = judge.judge("Yes indeed. No no.", ["paris yes"])
    # Claim 1 "Yes indeed.": premise yes (2) + hypothesis yes (2 * 2) -> [0, 0, 6].
    # Claim 2 "No no.": premise yes (2), hypothesis no no (2 * 2 * 2) -> [8, 0, 2].
    p1, p2 = softmax_at([0, 0, 6], 2), softmax_at([8, 0, 2], 2)
    assert [c.verdict for c in j.claims] == ["supported", "unsupported"]
    assert j.claims[0].reason == f"entailment probability {p1:.3f}"
    assert j.claims[1].reason == f"entailment probability {p2:.3f}"
    assert judge.entailment("paris yes", ["Yes indeed.", "No no."]) == pytest.approx(
        [p1, p2], rel=1e-5
    )
    assert j.score == 0.5
    assert judge.judge_id == "nli"


def test_a_long_premise_is_truncated_not_the_claim(tmp_path: Path) -> None:
    judge = NLIJudge(write_model(tmp_path / "m", max_length=8))
    # 8 tokens: [CLS] P [SEP] no . [SEP] leaves 3 premise tokens: [4, 0, 3 * 2].
    (p,) = judge.entailment("yes yes yes yes yes yes", ["no."])
    assert p == pytest.approx(softmax_at([4, 0, 6], 2), rel=1e-5)


def test_a_model_without_token_type_ids_is_fed_without_them(tmp_path: Path) -> None:
    judge = NLIJudge(write_model(tmp_path / "m", type_ids=False), threshold=0.9)
    (p,) = judge.entailment("yes", ["yes"])  # every token counts once: [0, 0, 4]
    assert p == pytest.approx(softmax_at([0, 0, 4], 2), rel=1e-5)
    assert judge.judge("Yes.", ["yes"]).claims[0].verdict == "supported"  # 0.96 >= 0.9


def test_errors_name_the_missing_file_and_a_config_without_entailment(tmp_path: Path) -> None:
    root = write_model(tmp_path / "m")
    (root / "tokenizer.json").unlink()
    with pytest.raises(UsageError, match=r"has no tokenizer\.json"):
        NLIJudge(root)
    root = write_model(tmp_path / "m2")
    (root / "config.json").write_text(json.dumps({"id2label": {"0": "A", "1": "B"}}))
    with pytest.raises(UsageError, match="no single entailment label"):
        NLIJudge(root)
    with pytest.raises(UsageError, match="must be a directory"):
        NLIJudge(tmp_path / "absent")


def test_the_model_id_tells_apart_models_in_folders_of_the_same_name(tmp_path: Path) -> None:
    same_a = NLIJudge(write_model(tmp_path / "a" / "nli")).model
    same_b = NLIJudge(write_model(tmp_path / "b" / "nli")).model
    other = NLIJudge(write_model(tmp_path / "c" / "nli", max_length=32)).model
    assert same_a == same_b  # the same files: the cache may serve both
    assert other != same_a
    assert same_a.startswith("nli:")
