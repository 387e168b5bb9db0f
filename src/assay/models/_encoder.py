"""Pretrained sentence encoders (BERT family) on ONNX Runtime, without torch.

A sentence encoder is read from a local directory in the sentence-transformers / Hugging Face
layout (nothing downloads):

- ``config.json``: a BERT configuration (``hidden_size``, ``num_hidden_layers``,
  ``num_attention_heads``, ``intermediate_size``, ``layer_norm_eps``, ``hidden_act`` ``gelu``,
  absolute positions);
- ``model.safetensors``: the weights (read with ``safetensors`` into numpy);
- ``tokenizer.json``: the fast tokenizer (the ``tokenizers`` package);
- optional ``modules.json``, ``1_Pooling/config.json`` (mean or CLS pooling; mean when absent),
  a ``Normalize`` module (L2 normalisation), ``sentence_bert_config.json`` (``max_seq_length``).

or an ONNX export of one (``model.onnx`` or ``onnx/model.onnx`` with inputs ``input_ids``,
``attention_mask`` and optionally ``token_type_ids``, first output the token states
``[N, L, H]``) beside the same ``tokenizer.json`` and pooling files.

The encoder becomes one ONNX graph (:func:`encoder_graph`): inputs ``input_ids`` and
``attention_mask`` (int64 ``[N, L]``), output ``embedding`` (float32 ``[N, H]``). For safetensors
weights the graph is built here with ``onnx.helper``, following BERT exactly:

    x = LayerNorm(word[ids] + position[0..L-1] + token_type[0])
    per layer:  a = softmax(Q K^T / sqrt(d) + (1 - mask) * MASKED) V   (per head, d = H / heads)
                x = LayerNorm(x + a W_o + b_o)
                x = LayerNorm(x + gelu(x W_1 + b_1) W_2 + b_2)
                gelu(h) = h (1 + erf(h / sqrt 2)) / 2
    pooling:    mean of x over the tokens whose mask is 1 (or x at [CLS])
    normalise:  e / max(||e||_2, 1e-12)  (only with a Normalize module)

Tokenisation stays in front of the graph (ONNX has no WordPiece operator ONNX Runtime ships
without extensions): :class:`SentenceEncoder` tokenises with the model's own ``tokenizer.json``,
truncated to the model's maximum length and padded to the longest text of each batch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from assay._errors import UsageError

if TYPE_CHECKING:
    import onnx
    import onnxruntime
    from tokenizers import Tokenizer

FloatArray = npt.NDArray[np.float32]

#: Input and output names of the encoder graph.
INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"
EMBEDDING = "embedding"
#: The additive attention bias of a padded position (as Hugging Face's BERT, a large negative
#: number: its softmax weight is exactly 0 in float32).
MASKED = -1.0e9
#: Texts per ONNX Runtime call when encoding many texts.
BATCH_SIZE = 64
#: ONNX opset of the encoder graph (LayerNormalization needs 17).
OPSET = 17

INSTALL_HINT = "pip install 'assay[models]'"
EXPECTED_LAYOUT = (
    "a sentence-transformers / Hugging Face model directory: config.json, model.safetensors "
    "(or an ONNX export: model.onnx or onnx/model.onnx) and tokenizer.json, optionally "
    "modules.json and 1_Pooling/config.json"
)


def _tokenizers() -> Any:
    try:
        import tokenizers
    except ImportError as exc:  # pragma: no cover - the models extra brings it
        raise UsageError(f"sentence encoders need the tokenizers package: {INSTALL_HINT}") from exc
    return tokenizers


@dataclass(frozen=True)
class EncoderSpec:
    """What a model directory holds, read and checked (see the module docstring).

    Attributes
    ----------
    path : the directory.
    config : ``config.json`` (empty for an ONNX export without it).
    pooling : ``mean`` or ``cls``.
    normalize : whether embeddings are L2-normalised.
    max_length : tokens per text at most (``[CLS]`` and ``[SEP]`` included).
    tokenizer_json : the tokenizer, as JSON text.
    weights : ``model.safetensors`` or None.
    onnx_file : the ONNX export or None.
    """

    path: Path
    config: dict[str, Any]
    pooling: str
    normalize: bool
    max_length: int
    tokenizer_json: str
    weights: Path | None
    onnx_file: Path | None

    @property
    def name(self) -> str:
        return self.path.name


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"{path.name} in the encoder directory is not readable JSON ({type(exc).__name__}); "
            f"expected {EXPECTED_LAYOUT}"
        ) from exc


def read_encoder_dir(path: str | Path) -> EncoderSpec:
    """Read and check a sentence-encoder directory; errors say which file is missing."""
    root = Path(path)
    if not root.is_dir():
        raise UsageError(
            f"--encoder must be 'tfidf' or a model directory (got {str(path)[-80:]!r}, which "
            f"is not a directory); expected {EXPECTED_LAYOUT}"
        )
    weights = root / "model.safetensors"
    onnx_file = next(
        (p for p in (root / "model.onnx", root / "onnx" / "model.onnx") if p.is_file()), None
    )
    present = sorted(p.name for p in root.iterdir())[:12]
    if not weights.is_file() and onnx_file is None:
        raise UsageError(
            f"{root.name!r} holds no model weights (found {present}); expected {EXPECTED_LAYOUT}"
        )
    if not (root / "tokenizer.json").is_file():
        raise UsageError(
            f"{root.name!r} has no tokenizer.json (found {present}); expected {EXPECTED_LAYOUT}. "
            "A model saved by sentence-transformers >= 2 or transformers' fast tokenizer has one"
        )
    config: dict[str, Any] = {}
    if (root / "config.json").is_file():
        config = dict(_read_json(root / "config.json"))
    elif onnx_file is None or weights.is_file():
        raise UsageError(
            f"{root.name!r} has no config.json (found {present}); expected {EXPECTED_LAYOUT}"
        )
    if weights.is_file():
        model_type = str(config.get("model_type", ""))
        if model_type not in ("bert", ""):
            raise UsageError(
                f"only BERT encoders are built from safetensors (config.json model_type "
                f"{model_type[:40]!r}); export it to ONNX (model.onnx) instead"
            )
        act = str(config.get("hidden_act", "gelu"))
        pos = str(config.get("position_embedding_type", "absolute"))
        if act != "gelu" or pos != "absolute":
            raise UsageError(
                f"this BERT uses hidden_act={act[:20]!r}, position_embedding_type={pos[:20]!r}; "
                "expected 'gelu' and 'absolute' (export it to ONNX, model.onnx, instead)"
            )
    pooling, normalize = "mean", False
    modules = root / "modules.json"
    if modules.is_file():
        for module in _read_json(modules):
            kind = str(module.get("type", ""))
            if kind.endswith(".Normalize"):
                normalize = True
            elif kind.endswith(".Pooling"):
                pool_cfg = _read_json(root / str(module.get("path", "1_Pooling")) / "config.json")
                pooling = _pooling_mode(pool_cfg)
            elif not kind.endswith(".Transformer"):
                raise UsageError(
                    f"modules.json has a module of type {kind[:80]!r}; supported: Transformer, "
                    "Pooling (mean or cls) and Normalize"
                )
    elif (root / "1_Pooling" / "config.json").is_file():
        pooling = _pooling_mode(_read_json(root / "1_Pooling" / "config.json"))
    limits = [int(config.get("max_position_embeddings", 512))]
    st_config = root / "sentence_bert_config.json"
    if st_config.is_file():
        limits.append(int(_read_json(st_config).get("max_seq_length", limits[0])))
    return EncoderSpec(
        path=root,
        config=config,
        pooling=pooling,
        normalize=normalize,
        max_length=min(limits),
        tokenizer_json=(root / "tokenizer.json").read_text(encoding="utf-8"),
        weights=weights if weights.is_file() else None,
        onnx_file=None if weights.is_file() else onnx_file,
    )


def _pooling_mode(cfg: dict[str, Any]) -> str:
    modes = [k for k, v in cfg.items() if k.startswith("pooling_mode_") and v]
    if modes == ["pooling_mode_mean_tokens"]:
        return "mean"
    if modes == ["pooling_mode_cls_token"]:
        return "cls"
    raise UsageError(
        f"1_Pooling/config.json asks for {modes}; supported: pooling_mode_mean_tokens or "
        "pooling_mode_cls_token alone"
    )


# -- the tokenizer ---------------------------------------------------------------------------------


def make_tokenizer(tokenizer_json: str, max_length: int) -> Tokenizer:
    """The model's fast tokenizer, truncating to ``max_length`` tokens and padding each batch
    to its longest text (with the tokenizer's own pad token, id 0 when it has none)."""
    tk = _tokenizers()
    tok: Tokenizer = tk.Tokenizer.from_str(tokenizer_json)
    tok.enable_truncation(max_length=max_length)
    pad = tok.padding or {}
    tok.enable_padding(
        pad_id=int(pad.get("pad_id", 0)), pad_token=str(pad.get("pad_token", "[PAD]"))
    )
    return tok


def tokenize(
    tok: Tokenizer, texts: Sequence[str]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Token ids and attention mask of ``texts``, int64 ``[N, L]``."""
    encs = tok.encode_batch(list(texts))
    ids = np.asarray([e.ids for e in encs], dtype=np.int64)
    mask = np.asarray([e.attention_mask for e in encs], dtype=np.int64)
    return ids, mask


# -- the graph -------------------------------------------------------------------------------------


class _Graph:
    """A small builder over ``onnx.helper``: unique names, initializers, nodes."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def const(self, name: str, value: npt.ArrayLike, dtype: Any = np.float32) -> str:
        from onnx import numpy_helper

        # Prefixed, so no name clashes with a foreign ONNX export's.
        name = f"assay/{name}"
        self.inits.append(numpy_helper.from_array(np.array(value, dtype=dtype, order="C"), name))
        return name

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        from onnx import helper

        self._n += 1
        out = f"assay/{op_type.lower()}_{self._n}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out


def _load_weights(path: Path) -> dict[str, npt.NDArray[np.float32]]:
    try:
        from safetensors.numpy import load_file
    except ImportError as exc:  # pragma: no cover - the models extra brings it
        raise UsageError(f"sentence encoders need the safetensors package: {INSTALL_HINT}") from exc
    try:
        raw = load_file(str(path))
    except Exception as exc:
        raise UsageError(
            f"model.safetensors is not readable ({type(exc).__name__}: {str(exc)[:120]}); "
            "expected a safetensors file of float32 or float16 tensors"
        ) from exc
    out = {}
    for key, value in raw.items():
        name = key.removeprefix("bert.")
        if np.issubdtype(value.dtype, np.floating):
            out[name] = np.asarray(value, dtype=np.float32)
    return out


def bert_graph(spec: EncoderSpec) -> onnx.ModelProto:
    """The ONNX graph of a BERT encoder with its pooling (see the module docstring)."""
    from onnx import TensorProto, helper

    assert spec.weights is not None
    w = _load_weights(spec.weights)
    cfg = spec.config
    hidden = int(cfg.get("hidden_size", 0))
    heads = int(cfg.get("num_attention_heads", 0))
    layers = int(cfg.get("num_hidden_layers", 0))
    eps = float(cfg.get("layer_norm_eps", 1e-12))
    if hidden <= 0 or heads <= 0 or hidden % heads or layers <= 0:
        raise UsageError(
            f"config.json must give hidden_size divisible by num_attention_heads and "
            f"num_hidden_layers >= 1 (got {hidden}, {heads}, {layers})"
        )

    def get(name: str, transpose: bool = False) -> npt.NDArray[np.float32]:
        if name not in w:
            raise UsageError(
                f"model.safetensors has no tensor {name!r} (it has {len(w)}, e.g. "
                f"{sorted(w)[:3]}); expected a BERT model's weights"
            )
        return w[name].T if transpose else w[name]

    g = _Graph()
    d = hidden // heads
    ids, mask = INPUT_IDS, ATTENTION_MASK
    # Embeddings.
    word = g.op("Gather", g.const("word_embeddings", get("embeddings.word_embeddings.weight")), ids)
    length = g.op(
        "Slice",
        g.op("Shape", ids),
        g.const("one_i", [1], np.int64),
        g.const("two_i", [2], np.int64),
    )
    positions = g.op(
        "Range",
        g.const("zero_s", 0, np.int64),
        g.op("Squeeze", length, g.const("axis0", [0], np.int64)),
        g.const("one_s", 1, np.int64),
    )
    pos = g.op(
        "Gather",
        g.const("position_embeddings", get("embeddings.position_embeddings.weight")),
        positions,
    )
    token_type = g.const("token_type_0", get("embeddings.token_type_embeddings.weight")[0])
    x = g.op("Add", g.op("Add", word, pos), token_type)

    def layer_norm(x: str, prefix: str) -> str:
        return g.op(
            "LayerNormalization",
            x,
            g.const(f"{prefix}.g", get(f"{prefix}.weight")),
            g.const(f"{prefix}.b", get(f"{prefix}.bias")),
            axis=-1,
            epsilon=eps,
        )

    def dense(x: str, prefix: str) -> str:
        wt = g.const(f"{prefix}.wt", get(f"{prefix}.weight", transpose=True))
        return g.op("Add", g.op("MatMul", x, wt), g.const(f"{prefix}.b", get(f"{prefix}.bias")))

    x = layer_norm(x, "embeddings.LayerNorm")
    # Attention bias [N, 1, 1, L]: 0 where the mask is 1, MASKED where it is 0.
    maskf = g.op("Cast", mask, to=TensorProto.FLOAT)
    bias = g.op(
        "Mul",
        g.op("Sub", g.const("one_f", 1.0), maskf),
        g.const("masked", MASKED),
    )
    bias = g.op("Unsqueeze", bias, g.const("axes12", [1, 2], np.int64))
    split_shape = g.const("split_shape", [0, 0, heads, d], np.int64)
    merge_shape = g.const("merge_shape", [0, 0, hidden], np.int64)
    scale = g.const("scale", 1.0 / np.sqrt(d))
    half, sqrt2 = g.const("half", 0.5), g.const("sqrt2", np.sqrt(2.0))
    for i in range(layers):
        p = f"encoder.layer.{i}"

        def heads_of(t: str) -> str:
            return g.op("Reshape", t, split_shape)

        q = g.op("Transpose", heads_of(dense(x, f"{p}.attention.self.query")), perm=[0, 2, 1, 3])
        k = g.op("Transpose", heads_of(dense(x, f"{p}.attention.self.key")), perm=[0, 2, 3, 1])
        v = g.op("Transpose", heads_of(dense(x, f"{p}.attention.self.value")), perm=[0, 2, 1, 3])
        scores = g.op("Add", g.op("Mul", g.op("MatMul", q, k), scale), bias)
        ctx = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
        ctx = g.op("Reshape", g.op("Transpose", ctx, perm=[0, 2, 1, 3]), merge_shape)
        x = layer_norm(
            g.op("Add", dense(ctx, f"{p}.attention.output.dense"), x),
            f"{p}.attention.output.LayerNorm",
        )
        h = dense(x, f"{p}.intermediate.dense")
        gelu = g.op(
            "Mul",
            g.op("Mul", h, half),
            g.op("Add", g.const(f"one_{i}", 1.0), g.op("Erf", g.op("Div", h, sqrt2))),
        )
        x = layer_norm(g.op("Add", dense(gelu, f"{p}.output.dense"), x), f"{p}.output.LayerNorm")
    emb = _pool(g, x, maskf, spec)
    graph = helper.make_graph(
        g.nodes,
        "sentence_encoder",
        [
            helper.make_tensor_value_info(ids, TensorProto.INT64, ["N", "L"]),
            helper.make_tensor_value_info(mask, TensorProto.INT64, ["N", "L"]),
        ],
        [helper.make_tensor_value_info(emb, TensorProto.FLOAT, ["N", hidden])],
        initializer=g.inits,
    )
    return _finish(graph)


def _pool(g: _Graph, states: str, maskf: str, spec: EncoderSpec, opset: int = OPSET) -> str:
    """Pooling (mean over the mask, or [CLS]) and the optional L2 normalisation, in ``opset``
    (13 to 21); the output is renamed :data:`EMBEDDING`."""
    from onnx import helper

    if opset < 13:
        raise UsageError(f"the ONNX export uses opset {opset}; expected 13 or later (re-export it)")
    if spec.pooling == "cls":
        emb = g.op("Gather", states, g.const("zero_idx", 0, np.int64), axis=1)
    else:
        m = g.op("Unsqueeze", maskf, g.const("axis_last", [-1], np.int64))
        total = g.op(
            "ReduceSum", g.op("Mul", states, m), g.const("axis1", [1], np.int64), keepdims=0
        )
        count = g.op("ReduceSum", m, g.const("axis1b", [1], np.int64), keepdims=0)
        emb = g.op("Div", total, g.op("Max", count, g.const("min_count", 1e-9)))
    if spec.normalize:
        # ReduceL2 takes its axes as an attribute before opset 18, as an input from 18.
        norm = (
            g.op("ReduceL2", emb, axes=[-1], keepdims=1)
            if opset < 18
            else g.op("ReduceL2", emb, g.const("axis_h", [-1], np.int64), keepdims=1)
        )
        emb = g.op("Div", emb, g.op("Max", norm, g.const("min_norm", 1e-12)))
    g.nodes.append(helper.make_node("Identity", [emb], [EMBEDDING]))
    return EMBEDDING


def _finish(graph: onnx.GraphProto) -> onnx.ModelProto:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=False)
    return model


def _onnx_export_graph(spec: EncoderSpec) -> onnx.ModelProto:
    """An ONNX export of a transformer, with token types fed as zeros inside the graph and
    the pooling appended: the same inputs and output as :func:`bert_graph`."""
    import onnx
    from onnx import TensorProto, helper

    assert spec.onnx_file is not None
    base = onnx.load(str(spec.onnx_file))
    names = [
        i.name
        for i in base.graph.input
        if not any(i.name == t.name for t in base.graph.initializer)
    ]
    if (
        INPUT_IDS not in names
        or ATTENTION_MASK not in names
        or not set(names)
        <= {
            INPUT_IDS,
            ATTENTION_MASK,
            "token_type_ids",
        }
    ):
        raise UsageError(
            f"the ONNX export's inputs are {names[:6]}; expected input_ids, attention_mask and "
            "optionally token_type_ids"
        )
    states = base.graph.output[0].name
    g = _Graph()
    if "token_type_ids" in names:
        # One sentence: every token type is 0. Computed first, the export's nodes read it.
        zeros = g.op("Mul", INPUT_IDS, g.const("zero_i64", 0, np.int64))
        g.nodes.append(helper.make_node("Identity", [zeros], ["token_type_ids"]))
        keep = [i for i in base.graph.input if i.name != "token_type_ids"]
        del base.graph.input[:]
        base.graph.input.extend(keep)
        first = list(g.nodes) + list(base.graph.node)
        del base.graph.node[:]
        base.graph.node.extend(first)
        g.nodes = []
    maskf = g.op("Cast", ATTENTION_MASK, to=TensorProto.FLOAT)
    _pool(g, states, maskf, spec, opset_of(base))
    base.graph.node.extend(g.nodes)
    base.graph.initializer.extend(g.inits)
    del base.graph.output[:]
    base.graph.output.extend(
        [helper.make_tensor_value_info(EMBEDDING, TensorProto.FLOAT, ["N", None])]
    )
    return base


def opset_of(model: onnx.ModelProto) -> int:
    """The default-domain opset a model imports."""
    return next(int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx"))


def encoder_graph(spec: EncoderSpec) -> onnx.ModelProto:
    """The encoder of ``spec`` as one ONNX graph: ``input_ids``, ``attention_mask`` ->
    ``embedding``."""
    return bert_graph(spec) if spec.weights is not None else _onnx_export_graph(spec)


# -- encoding --------------------------------------------------------------------------------------


def encode_batches(
    sess: onnxruntime.InferenceSession,
    tok: Tokenizer,
    texts: Sequence[str],
    *,
    output: str = EMBEDDING,
    batch_size: int = BATCH_SIZE,
) -> npt.NDArray[np.float32]:
    """Run ``sess`` over ``texts`` in batches of similar length (less padding), rows returned
    in the order of ``texts``."""
    if not texts:
        width = sess.get_outputs()[0].shape[-1]
        return np.empty((0, width if isinstance(width, int) else 0), dtype=np.float32)
    order = np.argsort([len(t) for t in texts], kind="stable")
    parts: list[npt.NDArray[np.float32]] = []
    for lo in range(0, len(texts), batch_size):
        ids, mask = tokenize(tok, [texts[i] for i in order[lo : lo + batch_size]])
        (out,) = sess.run([output], {INPUT_IDS: ids, ATTENTION_MASK: mask})
        parts.append(np.asarray(out, dtype=np.float32))
    stacked = np.concatenate(parts)
    result = np.empty_like(stacked)
    result[order] = stacked
    return result


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, hex (the provenance of an encoder's weights)."""
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class SentenceEncoder:
    """A sentence encoder on ONNX Runtime (torch never needed).

    Parameters
    ----------
    path : a model directory (see :func:`read_encoder_dir`).
    """

    def __init__(self, path: str | Path) -> None:
        from assay.models._onnx import session

        self.spec = read_encoder_dir(path)
        source = self.spec.weights or self.spec.onnx_file
        assert source is not None
        self.sha256 = file_sha256(source)
        self.graph = encoder_graph(self.spec)
        self.tokenizer = make_tokenizer(self.spec.tokenizer_json, self.spec.max_length)
        self.session = session(self.graph)
        self.dim = int(self.encode(["a"]).shape[1])

    def encode(self, texts: Sequence[str], *, batch_size: int = BATCH_SIZE) -> FloatArray:
        """Embeddings of ``texts``, float32 ``[N, H]``."""
        return encode_batches(self.session, self.tokenizer, texts, batch_size=batch_size)
