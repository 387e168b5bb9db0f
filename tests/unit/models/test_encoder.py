"""Sentence encoders on ONNX Runtime: a tiny random BERT written as a sentence-transformers
directory, its ONNX graph against a pure-numpy BERT written here, the intent head on its
embeddings (parity with scikit-learn), the CLI's ``--encoder PATH``, and the errors for a
directory that is not a model."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from assay import UsageError
from assay.cli import app
from assay.models._encoder import SentenceEncoder, make_tokenizer, read_encoder_dir, tokenize
from assay.models._intent import (
    IntentModel,
    IntentPredictor,
    normalise,
    parity,
    to_onnx,
    train_intent,
)
from assay.models._intent_data import load_intent_data
from assay.models._registry import Registry

SMALL = files("assay") / "data" / "clinc150" / "data_small.json"
HIDDEN, HEADS, LAYERS, FFN, MAX_POS = 32, 2, 2, 64, 40
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _vocab() -> list[str]:
    """The specials, the 300 commonest words of the shipped subset, and single letters with
    their ``##`` continuations (so every lower-case word has a WordPiece split)."""
    small = json.loads(SMALL.read_text(encoding="utf-8"))
    words: Counter[str] = Counter()
    for text, _ in small["train"]:
        words.update(w for w in text.lower().split() if w.isalpha())
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    common = [w for w, _ in words.most_common(300) if len(w) > 1]
    return SPECIALS + letters + ["##" + c for c in letters] + common + ["?", ".", ",", "'"]


def write_tiny_bert(
    root: Path,
    *,
    pooling: str = "mean",
    normalize: bool = True,
    seed: int = 0,
    max_seq_length: int = 24,
) -> Path:
    """A random 2-layer BERT (hidden 32, 2 heads) in the sentence-transformers layout."""
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    root.mkdir(parents=True, exist_ok=True)
    vocab = _vocab()
    ids = {tok: i for i, tok in enumerate(vocab)}
    tok = Tokenizer(WordPiece(ids, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece()
    tok.save(str(root / "tokenizer.json"))
    rng = np.random.default_rng(seed)

    def r(*shape: int, scale: float = 0.3) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    w = {
        "embeddings.word_embeddings.weight": r(len(vocab), HIDDEN),
        "embeddings.position_embeddings.weight": r(MAX_POS, HIDDEN),
        "embeddings.token_type_embeddings.weight": r(2, HIDDEN),
        "embeddings.LayerNorm.weight": 1 + r(HIDDEN, scale=0.1),
        "embeddings.LayerNorm.bias": r(HIDDEN, scale=0.1),
        "embeddings.position_ids": np.arange(MAX_POS, dtype=np.int64)[None, :],
    }
    for i in range(LAYERS):
        p = f"encoder.layer.{i}"
        for name in ("query", "key", "value"):
            w[f"{p}.attention.self.{name}.weight"] = r(HIDDEN, HIDDEN)
            w[f"{p}.attention.self.{name}.bias"] = r(HIDDEN, scale=0.1)
        w[f"{p}.attention.output.dense.weight"] = r(HIDDEN, HIDDEN)
        w[f"{p}.attention.output.dense.bias"] = r(HIDDEN, scale=0.1)
        w[f"{p}.intermediate.dense.weight"] = r(FFN, HIDDEN)
        w[f"{p}.intermediate.dense.bias"] = r(FFN, scale=0.1)
        w[f"{p}.output.dense.weight"] = r(HIDDEN, FFN)
        w[f"{p}.output.dense.bias"] = r(HIDDEN, scale=0.1)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[f"{p}.{ln}.weight"] = 1 + r(HIDDEN, scale=0.1)
            w[f"{p}.{ln}.bias"] = r(HIDDEN, scale=0.1)
    save_file(w, str(root / "model.safetensors"))
    config = {
        "model_type": "bert",
        "hidden_size": HIDDEN,
        "num_attention_heads": HEADS,
        "num_hidden_layers": LAYERS,
        "intermediate_size": FFN,
        "max_position_embeddings": MAX_POS,
        "layer_norm_eps": 1e-12,
        "hidden_act": "gelu",
        "vocab_size": len(vocab),
        "type_vocab_size": 2,
    }
    (root / "config.json").write_text(json.dumps(config))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    if normalize:
        modules.append(
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            }
        )
    (root / "modules.json").write_text(json.dumps(modules))
    (root / "1_Pooling").mkdir(exist_ok=True)
    (root / "1_Pooling" / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": HIDDEN,
                "pooling_mode_cls_token": pooling == "cls",
                "pooling_mode_mean_tokens": pooling == "mean",
                "pooling_mode_max_tokens": False,
            }
        )
    )
    (root / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length}))
    return root


# -- the independent reference: BERT in numpy, float64, one text at a time, no padding ----------


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def reference_embedding(
    root: Path, token_ids: Sequence[int], *, pooling: str = "mean", normalize: bool = True
) -> np.ndarray:
    """BERT over one unpadded token sequence: each head's attention computed separately, GELU
    through math.erf, mean pooling as a plain mean (no padding to mask)."""
    from safetensors.numpy import load_file

    w = {k: v.astype(np.float64) for k, v in load_file(str(root / "model.safetensors")).items()}
    ids = list(token_ids)
    n = len(ids)
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][:n]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    d = HIDDEN // HEADS
    erf = np.vectorize(math.erf)
    for i in range(LAYERS):
        p = f"encoder.layer.{i}"

        def lin(v: np.ndarray, name: str, p: str = p) -> np.ndarray:
            return v @ w[f"{p}.{name}.weight"].T + w[f"{p}.{name}.bias"]

        q, k, v = (lin(x, f"attention.self.{m}") for m in ("query", "key", "value"))
        ctx = np.zeros_like(x)
        for h in range(HEADS):
            sl = slice(h * d, (h + 1) * d)
            s = q[:, sl] @ k[:, sl].T / math.sqrt(d)
            e = np.exp(s - s.max(axis=1, keepdims=True))
            ctx[:, sl] = (e / e.sum(axis=1, keepdims=True)) @ v[:, sl]
        x = _layer_norm(
            x + lin(ctx, "attention.output.dense"),
            w[f"{p}.attention.output.LayerNorm.weight"],
            w[f"{p}.attention.output.LayerNorm.bias"],
        )
        hid = lin(x, "intermediate.dense")
        hid = hid * 0.5 * (1.0 + erf(hid / math.sqrt(2.0)))
        x = _layer_norm(
            x + lin(hid, "output.dense"),
            w[f"{p}.output.LayerNorm.weight"],
            w[f"{p}.output.LayerNorm.bias"],
        )
    emb = x[0] if pooling == "cls" else x.mean(axis=0)
    return emb / np.linalg.norm(emb) if normalize else emb


def _ids(root: Path, text: str) -> list[int]:
    """Unpadded ids of one text (the library's tokenizer, truncated as the encoder does)."""
    spec = read_encoder_dir(root)
    tok = make_tokenizer(spec.tokenizer_json, spec.max_length)
    ids, mask = tokenize(tok, [text])
    return [int(i) for i, m in zip(ids[0], mask[0], strict=True) if m]


TEXTS = [
    "what is the weather like today",
    "freeze my account please",
    "hi",
    "how do i say thank you in french and also in spanish and german and italian",
    "zzyzx qwerty",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_bert(tmp_path_factory.mktemp("tiny") / "tiny-bert")


@pytest.fixture(scope="module")
def encoder(tiny: Path) -> SentenceEncoder:
    return SentenceEncoder(tiny)


def test_tokenizer_adds_cls_sep_truncates_and_pads_per_batch(tiny: Path) -> None:
    vocab = _vocab()
    spec = read_encoder_dir(tiny)
    assert spec.max_length == 24  # min(sentence_bert_config's 24, max_position_embeddings 40)
    tok = make_tokenizer(spec.tokenizer_json, spec.max_length)
    ids, mask = tokenize(tok, ["hi", "zq"])
    cls, sep, z, q = 2, 3, vocab.index("z"), vocab.index("##q")
    hi = vocab.index("hi") if "hi" in vocab else None
    assert ids[1].tolist() == [cls, z, q, sep]  # "zq" -> z ##q, not in the vocabulary whole
    assert mask.tolist()[1] == [1, 1, 1, 1]
    if hi is not None:
        assert ids[0].tolist() == [cls, hi, sep, 0]
        assert mask[0].tolist() == [1, 1, 1, 0]
    long_ids, long_mask = tokenize(tok, ["a " * 100])
    assert long_ids.shape == (1, 24)
    assert long_mask.sum() == 24
    assert long_ids[0, 0] == cls
    assert long_ids[0, -1] == sep


def test_onnx_encoder_equals_a_numpy_bert_per_text_in_a_padded_batch(
    tiny: Path, encoder: SentenceEncoder
) -> None:
    got = encoder.encode(TEXTS, batch_size=3)  # batches mix lengths: padding is exercised
    assert got.shape == (len(TEXTS), HIDDEN)
    assert got.dtype == np.float32
    for text, row in zip(TEXTS, got, strict=True):
        ref = reference_embedding(tiny, _ids(tiny, text))
        np.testing.assert_allclose(row, ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize(("pooling", "normalize"), [("cls", False), ("mean", False)])
def test_pooling_and_normalisation_follow_the_directory(
    tmp_path: Path, pooling: str, normalize: bool
) -> None:
    root = write_tiny_bert(tmp_path / "m", pooling=pooling, normalize=normalize, seed=3)
    got = SentenceEncoder(root).encode(TEXTS[:3])
    for text, row in zip(TEXTS[:3], got, strict=True):
        ref = reference_embedding(root, _ids(root, text), pooling=pooling, normalize=normalize)
        np.testing.assert_allclose(row, ref, atol=1e-5, rtol=0)
    assert not np.allclose(np.linalg.norm(got, axis=1), 1.0)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.text(alphabet="abcdefghij ?", min_size=0, max_size=30), min_size=1, max_size=6))
def test_a_text_embeds_the_same_alone_or_in_any_batch(
    encoder: SentenceEncoder, texts: list[str]
) -> None:
    together = encoder.encode(texts, batch_size=4)
    alone = np.stack([encoder.encode([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5, rtol=0)


def _as_onnx_export(tiny: Path, root: Path) -> Path:
    """The tiny BERT as a Hugging Face style ONNX export in opset 18: token states named
    ``last_hidden_state``, no pooling, a ``token_type_ids`` input that moves every state by
    5 per unit (so a wrapper feeding anything but zeros shows), no safetensors or config."""
    import shutil

    import onnx
    from onnx import TensorProto, helper

    from assay.models._encoder import bert_graph

    full = bert_graph(read_encoder_dir(tiny))
    nodes = list(full.graph.node)
    last = max(i for i, n in enumerate(nodes) if n.op_type == "LayerNormalization")
    five = helper.make_tensor("five", TensorProto.FLOAT, [], [5.0])
    axes = helper.make_tensor("axes_last", TensorProto.INT64, [1], [-1])
    extra = [
        helper.make_node("Cast", ["token_type_ids"], ["tt_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["tt_f", "axes_last"], ["tt_u"]),
        helper.make_node("Mul", ["tt_u", "five"], ["tt_shift"]),
        helper.make_node("Add", [nodes[last].output[0], "tt_shift"], ["last_hidden_state"]),
    ]
    ints = [
        helper.make_tensor_value_info(n, TensorProto.INT64, ["N", "L"])
        for n in ("input_ids", "token_type_ids", "attention_mask")
    ]
    kept = nodes[: last + 1]
    graph = helper.make_graph(
        kept + extra,
        "export",
        ints,
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["N", "L", 32])],
        initializer=[
            *(i for i in full.graph.initializer if i.name in {x for n in kept for x in n.input}),
            five,
            axes,
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    (root / "onnx").mkdir(parents=True)
    onnx.save(model, str(root / "onnx" / "model.onnx"))
    for name in ("tokenizer.json", "modules.json", "sentence_bert_config.json"):
        shutil.copy(tiny / name, root / name)
    shutil.copytree(tiny / "1_Pooling", root / "1_Pooling")
    return root


def test_an_onnx_export_gets_zero_token_types_and_the_pooling(tmp_path: Path, tiny: Path) -> None:
    root = _as_onnx_export(tiny, tmp_path / "exported")
    enc = SentenceEncoder(root)
    assert enc.spec.weights is None
    assert enc.spec.max_length == 24
    got = enc.encode(TEXTS, batch_size=2)
    for text, row in zip(TEXTS, got, strict=True):
        np.testing.assert_allclose(row, reference_embedding(tiny, _ids(tiny, text)), atol=1e-5)
    model = train_intent(str(SMALL), encoder=root, c_grid=(10.0,))
    texts = normalise(load_intent_data(str(SMALL)).test.texts)
    assert parity(model, to_onnx(model), texts) <= 1e-5


# -- errors ---------------------------------------------------------------------------------------


def test_a_directory_that_is_not_a_model_says_what_was_expected(tmp_path: Path, tiny: Path) -> None:
    with pytest.raises(UsageError, match=r"not a directory.*config\.json, model\.safetensors"):
        read_encoder_dir(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    with pytest.raises(UsageError, match=r"no model weights \(found \['notes\.txt'\]\)"):
        read_encoder_dir(empty)
    no_tok = tmp_path / "no_tok"
    no_tok.mkdir()
    (no_tok / "model.safetensors").write_bytes((tiny / "model.safetensors").read_bytes())
    (no_tok / "config.json").write_text((tiny / "config.json").read_text())
    with pytest.raises(UsageError, match=r"no tokenizer\.json"):
        read_encoder_dir(no_tok)
    (no_tok / "tokenizer.json").write_text((tiny / "tokenizer.json").read_text())
    (no_tok / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(UsageError, match=r"only BERT encoders.*'gpt2'"):
        read_encoder_dir(no_tok)
    (no_tok / "config.json").write_text("{not json")
    with pytest.raises(UsageError, match=r"config\.json in the encoder directory is not readable"):
        read_encoder_dir(no_tok)
    (no_tok / "config.json").write_text((tiny / "config.json").read_text())
    (no_tok / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(UsageError, match=r"model\.safetensors is not readable"):
        SentenceEncoder(no_tok)
    pool = tmp_path / "pool"
    write_tiny_bert(pool)
    (pool / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_max_tokens": True}))
    with pytest.raises(UsageError, match="pooling_mode_max_tokens"):
        read_encoder_dir(pool)


# -- the intent head ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def intent_model(tiny: Path) -> IntentModel:
    return train_intent(str(SMALL), encoder=tiny, c_grid=(10.0, 100.0))


def test_head_is_chosen_on_validation_and_records_the_encoder(
    intent_model: IntentModel, tiny: Path
) -> None:
    params = intent_model.params
    assert params["encoder"] == "sentence"
    assert params["encoder_dim"] == HIDDEN
    assert params["pooling"] == "mean"
    assert params["normalize"] is True
    assert params["max_length"] == 24
    import hashlib

    assert (
        params["encoder_sha256"]
        == hashlib.sha256((tiny / "model.safetensors").read_bytes()).hexdigest()
    )
    cands = intent_model.evaluation["candidates"]
    assert set(cands) == {"10", "100"}
    best = max(cands, key=lambda c: cands[c]["valid_criterion"])
    assert params["C"] == float(best)
    assert intent_model.threshold == cands[best]["threshold"]
    assert len(intent_model.classes) == 11
    assert "oos" in intent_model.classes


def test_exported_encoder_and_head_equal_numpy_bert_then_scikit_learn(
    intent_model: IntentModel, tiny: Path
) -> None:
    ds = load_intent_data(str(SMALL))
    texts = normalise(ds.test.texts)[:25]
    proto = to_onnx(intent_model)
    predictor = IntentPredictor(proto.SerializeToString())
    assert predictor.encoder == "sentence"
    got = predictor.probabilities(texts)
    ref_emb = np.stack([reference_embedding(tiny, _ids(tiny, t)) for t in texts])
    clf = intent_model.pipeline.clf  # type: ignore[union-attr]
    want = clf.predict_proba(ref_emb)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert parity(intent_model, proto, normalise(ds.test.texts)) <= 1e-5
    preds = predictor.predict(["Freeze my ACCOUNT\tplease"], top_k=2)
    row = predictor.probabilities(["freeze my account please"])[0]
    assert preds[0].probability == pytest.approx(float(row.max()), abs=1e-6)
    assert [k for k, _ in preds[0].top_k] == [intent_model.classes[i] for i in np.argsort(-row)[:2]]


def test_cli_trains_a_sentence_encoder_model_and_the_registry_serves_it(
    tmp_path: Path, tiny: Path
) -> None:
    runner = CliRunner()
    ws = tmp_path / "ws"
    assert runner.invoke(app, ["init", "-w", str(ws)]).exit_code == 0
    args = ["models", "train", "intent", "--data", str(SMALL), "-w", str(ws), "-f", "json"]
    result = runner.invoke(app, [*args, "--encoder", str(tiny), "--name", "intent-st"])
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = json.loads(result.stdout)
    assert summary["model"] == "intent-st/1"
    assert summary["onnx_max_abs_diff"] <= 1e-5
    assert summary["test"]["rows"] == 60
    reg = Registry(ws)
    shown = reg.show("intent-st")
    assert shown["params"]["encoder"] == "sentence"
    assert shown["tags"]["assay.encoder"] == "sentence"
    _, raw = reg.load_onnx("intent-st")
    predictor = IntentPredictor(raw)
    texts = ["is it going to rain tomorrow", "freeze my bank account"]
    ds = load_intent_data(str(SMALL))
    model = train_intent(ds, encoder=tiny, c_grid=(float(shown["params"]["C"]),))
    np.testing.assert_allclose(
        predictor.probabilities(normalise(texts)), model.predict_proba(normalise(texts)), atol=1e-5
    )
    bad = runner.invoke(app, [*args, "--encoder", str(tmp_path / "missing")])
    assert bad.exit_code == 2
    assert "is not a directory" in bad.stderr
    assert "tokenizer.json" in bad.stderr
