"""Intent models: text classification with out-of-scope (OOS) detection, exported whole to ONNX.

What :func:`train_intent` does, in order:

1. **Data** (:mod:`assay.models._intent_data`): CLINC150's JSON layout or JSONL/CSV of
   ``text,label``, redacted by :mod:`assay.privacy` as it is read, then normalised
   (:func:`normalise`: lower case, runs of whitespace become one space, ends stripped;
   prediction does the same, so the graph never sees a tab, a newline or a capital).
2. **Encoder** ``tfidf``: the union of two ``TfidfVectorizer`` (raw counts, smooth idf, l2
   norm, lower case; ``sublinear_tf=True`` is not used because skl2onnx 1.20's export of it
   differs from scikit-learn as soon as a term occurs twice in a text): word 1-2-grams with
   the token pattern ``[a-z0-9_]+`` (the same regular expression in scikit-learn and in ONNX
   Runtime's ``Tokenizer``; scikit-learn's default ``\\b\\w\\w+\\b``
   has no exact RE2 twin) and character 2-4-grams with ``analyzer="char"`` (``char_wb`` has no
   ONNX converter), each term kept if it occurs in at least :data:`MIN_DF` training texts.
3. **Classifier**: multinomial logistic regression; ``C`` chosen from :data:`C_GRID` on the
   validation part only (criterion below).
4. **Out of scope**, two mechanisms together: the ``oos`` label is an ordinary class when the
   training part holds it; and a **confidence threshold** ``t``: a text whose highest class
   probability is below ``t`` is labelled ``oos``. ``t`` is chosen on the validation part only,
   from :data:`THRESHOLDS`: the highest OOS recall that costs at most
   :data:`MAX_IN_SCOPE_DROP` (1 point) of in-scope accuracy against no threshold (ties to the
   lower ``t``). Maximising in-scope accuracy + OOS recall instead trades about 7 points of
   in-scope accuracy for OOS recall on CLINC150 (100 OOS against 3,000 in-scope validation
   texts), an operating point few assistants want. The whole curve (per ``t``: in-scope
   accuracy, OOS recall and precision) is kept in the evaluation, to choose another point.
   Without OOS rows in the validation part ``t`` is 0 and the recall column is empty.
   ``C`` maximises in-scope accuracy + OOS recall on validation, each ``C`` at its own ``t``.
5. The **test** part is scored once, with the chosen ``C`` and ``t``: in-scope accuracy
   (an in-scope text is right only if its intent is predicted; answering ``oos`` is wrong),
   OOS recall and precision, and macro-F1 over every label (``oos`` included), with the
   threshold and without it (``class_*``: the OOS class alone).

The ONNX export (:func:`to_onnx`) holds the tokenisation: input ``text`` (string ``[N, 1]``,
normalised), outputs ``label`` and ``probabilities`` (float32 ``[N, K]``, classes in the
order of the metadata ``assay.intent.labels``). The threshold and the OOS label ride in the
graph's metadata, so a loaded model is self-contained (:class:`IntentPredictor`).
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from assay._errors import UsageError
from assay.models._holdout import HOLDOUT_JSON, Holdout
from assay.models._intent_data import IntentData, Split, load_intent_data
from assay.models._train import stage
from assay.privacy import redact_array

if TYPE_CHECKING:
    import onnx
    import onnxruntime
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from tokenizers import Tokenizer

    from assay._api import Workspace
    from assay.models._encoder import SentenceEncoder
    from assay.models._registry import Registry, VersionRef

#: ``tfidf``, or the path of a sentence-encoder directory (see :mod:`assay.models._encoder`).
Encoder = str | Path
FloatArray = npt.NDArray[np.float64]

#: Inverse regularisation strengths tried on the validation part (tfidf).
C_GRID: tuple[float, ...] = (3.0, 10.0, 30.0)
#: The same for a logistic regression on sentence embeddings (L2-normalised, so components
#: are small and the useful ``C`` is larger).
ENCODER_C_GRID: tuple[float, ...] = (3.0, 10.0, 30.0, 100.0)
#: Confidence thresholds tried on the validation part (0 means none).
THRESHOLDS: tuple[float, ...] = tuple(round(0.01 * k, 2) for k in range(100))
#: How much validation in-scope accuracy the threshold may cost (1 point).
MAX_IN_SCOPE_DROP = 0.01
#: The word token pattern, identical in scikit-learn and ONNX Runtime (RE2).
TOKEN_PATTERN = r"[a-z0-9_]+"
#: Locale of ONNX's ``StringNormalizer`` (lower-casing).
LOCALE = "C.UTF-8"
WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (2, 4)
#: A term is kept if it occurs in at least this many training texts (also keeps rare strings,
#: which could identify a person, out of the exported vocabulary).
MIN_DF = 2
#: Largest tolerated |ONNX probability - scikit-learn probability| on the test part.
PARITY_TOLERANCE = 1e-5
#: Metadata keys of the ONNX export.
META_LABELS = "assay.intent.labels"
META_THRESHOLD = "assay.intent.threshold"
META_OOS = "assay.intent.oos_label"
META_ENCODER = "assay.intent.encoder"
#: A sentence encoder's tokenizer (``tokenizer.json`` text) and its maximum length: present only
#: in sentence-encoder models, whose graph takes token ids instead of text.
META_TOKENIZER = "assay.intent.tokenizer"
META_MAX_LENGTH = "assay.intent.max_length"
INPUT = "text"
PROBABILITIES = "probabilities"


def normalise(texts: Sequence[str]) -> list[str]:
    """Lower case (Python's ``str.lower``); runs of whitespace become one space; leading and
    trailing whitespace go.

    Done in Python, before scikit-learn and before the graph, because the two disagree
    otherwise: scikit-learn's ``char`` analyzer folds whitespace runs and ONNX Runtime's
    tokenizer does not, and ONNX's lower-casing differs from Python's for a few letters
    (``"İ".lower()`` is two code points). The graph still lower-cases (a no-op then)."""
    return [" ".join(t.lower().split()) for t in texts]


def prepare(texts: Sequence[str]) -> list[str]:
    """What a text goes through before the model: redaction, then :func:`normalise`."""
    if not texts:
        return []
    redacted, _ = redact_array(pa.array(list(texts), type=pa.string()))
    return normalise([str(t) for t in redacted.to_pylist()])


# -- metrics ----------------------------------------------------------------------------------


def apply_threshold(
    proba: FloatArray, classes: Sequence[str], threshold: float, oos_label: str
) -> list[str]:
    """The label of each row: its most probable class, or ``oos_label`` if that class's
    probability is below ``threshold``."""
    best = np.argmax(proba, axis=1)
    conf = proba[np.arange(len(best)), best]
    return [oos_label if c < threshold else classes[b] for b, c in zip(best, conf, strict=True)]


def oos_scores(truth: Sequence[str], pred: Sequence[str], oos_label: str) -> dict[str, float]:
    """In-scope accuracy, OOS recall and OOS precision (NaN where undefined)."""
    t = np.asarray(truth, dtype=object)
    p = np.asarray(pred, dtype=object)
    inscope = t != oos_label
    oos = ~inscope
    said_oos = p == oos_label
    nan = float("nan")
    return {
        "in_scope_accuracy": float(np.mean(p[inscope] == t[inscope])) if inscope.any() else nan,
        "oos_recall": float(np.mean(said_oos[oos])) if oos.any() else nan,
        "oos_precision": float(np.mean(oos[said_oos])) if said_oos.any() else nan,
    }


def _macro_f1(truth: Sequence[str], pred: Sequence[str]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(truth, pred, average="macro", labels=sorted(set(truth)), zero_division=0))


def threshold_curve(
    proba: FloatArray, classes: Sequence[str], truth: Sequence[str], oos_label: str
) -> list[dict[str, float]]:
    """Per threshold of :data:`THRESHOLDS`: in-scope accuracy, OOS recall, OOS precision."""
    return [
        {
            "threshold": t,
            **oos_scores(truth, apply_threshold(proba, classes, t, oos_label), oos_label),
        }
        for t in THRESHOLDS
    ]


def choose_threshold(
    curve: list[dict[str, float]], max_in_scope_drop: float = MAX_IN_SCOPE_DROP
) -> tuple[float, float]:
    """The threshold with the highest OOS recall among those whose in-scope accuracy is at
    most ``max_in_scope_drop`` below the accuracy without a threshold (the curve's first row,
    ``t = 0``); ties go to the lowest threshold. Returns it and its in-scope accuracy + OOS
    recall (the criterion ``C`` is chosen by). Without OOS rows (every recall NaN): ``t = 0``
    and the in-scope accuracy."""
    base = float(curve[0]["in_scope_accuracy"])
    if all(np.isnan(row["oos_recall"]) for row in curve):
        return 0.0, base
    best_t, best_recall, value = 0.0, -1.0, base
    for row in curve:
        if row["in_scope_accuracy"] < base - max_in_scope_drop - 1e-12:
            continue
        if row["oos_recall"] > best_recall + 1e-12:
            best_t, best_recall = row["threshold"], row["oos_recall"]
            value = row["in_scope_accuracy"] + row["oos_recall"]
    return best_t, value


# -- the model ----------------------------------------------------------------------------------


def _pipeline(c: float, seed: int) -> Pipeline:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    features = FeatureUnion(
        [
            (
                "word",
                TfidfVectorizer(
                    analyzer="word",
                    token_pattern=TOKEN_PATTERN,
                    ngram_range=WORD_NGRAMS,
                    lowercase=True,
                    min_df=MIN_DF,
                    dtype=np.float32,
                ),
            ),
            (
                "char",
                TfidfVectorizer(
                    analyzer="char",
                    ngram_range=CHAR_NGRAMS,
                    lowercase=True,
                    min_df=MIN_DF,
                    dtype=np.float32,
                ),
            ),
        ]
    )
    clf = LogisticRegression(C=c, max_iter=1000, tol=1e-4, random_state=seed)
    return Pipeline([("features", features), ("clf", clf)])


@dataclass
class EncoderHead:
    """A sentence encoder and a multinomial logistic regression on its embeddings: what
    ``pipeline`` holds for an encoder other than tfidf.

    Attributes
    ----------
    encoder : the sentence encoder (ONNX Runtime).
    clf : the fitted scikit-learn logistic regression.
    """

    encoder: SentenceEncoder
    clf: LogisticRegression

    @property
    def classes_(self) -> npt.NDArray[Any]:
        return np.asarray(self.clf.classes_)

    def predict_proba(self, texts: Sequence[str]) -> FloatArray:
        return np.asarray(self.clf.predict_proba(self.encoder.encode(texts)), dtype=np.float64)


def _head(c: float, seed: int) -> LogisticRegression:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=3000, tol=1e-4, random_state=seed)


@dataclass
class IntentModel:
    """A trained intent model (scikit-learn) with its threshold and evaluation.

    Attributes
    ----------
    pipeline : the fitted features + logistic regression (tfidf), or an :class:`EncoderHead`.
    classes : the class labels, in the order of the probability columns.
    oos_label : the label meaning out of scope (a class or not).
    threshold : the confidence threshold chosen on validation (0: none).
    params : the choices and settings, plain values.
    evaluation : validation candidates, the validation curve, validation and test metrics.
    holdout : the test part's true and predicted labels and confidences (None without a test
        part), registered next to the model for the launch gate.
    """

    pipeline: Pipeline | EncoderHead
    classes: list[str]
    oos_label: str
    threshold: float
    params: dict[str, Any]
    evaluation: dict[str, Any] = field(default_factory=dict)
    holdout: Holdout | None = None

    def predict_proba(self, texts: Sequence[str]) -> FloatArray:
        """Class probabilities of already prepared texts (see :func:`prepare`)."""
        return np.asarray(self.pipeline.predict_proba(list(texts)), dtype=np.float64)

    def predict(self, texts: Sequence[str]) -> list[str]:
        """Labels of already prepared texts, the threshold applied."""
        return apply_threshold(
            self.predict_proba(texts), self.classes, self.threshold, self.oos_label
        )


def _scores(model: IntentModel, part: Split, proba: FloatArray | None = None) -> dict[str, float]:
    p = model.predict_proba(part.texts) if proba is None else proba
    with_t = apply_threshold(p, model.classes, model.threshold, model.oos_label)
    without = apply_threshold(p, model.classes, 0.0, model.oos_label)
    out = {**oos_scores(part.labels, with_t, model.oos_label)}
    out["macro_f1"] = _macro_f1(part.labels, with_t)
    for k, v in oos_scores(part.labels, without, model.oos_label).items():
        out[f"class_{k}"] = v
    out["class_macro_f1"] = _macro_f1(part.labels, without)
    out["rows"] = float(len(part))
    return out


def train_intent(
    data: str | Path | dict[str, Any] | IntentData,
    *,
    encoder: Encoder = "tfidf",
    oos_label: str = "oos",
    seed: int = 0,
    c_grid: Sequence[float] | None = None,
    max_in_scope_drop: float = MAX_IN_SCOPE_DROP,
    progress: Callable[[str], None] | None = None,
) -> IntentModel:
    """Train an intent model; every choice on the validation part, the test part scored once.

    Parameters
    ----------
    data : a file path (CLINC150 JSON, JSONL or CSV), a CLINC150-layout object, or data
        already read by :func:`~assay.models._intent_data.load_intent_data`.
    encoder : ``tfidf``, or the directory of a pretrained sentence encoder (see
        :mod:`assay.models._encoder`; its embeddings feed the logistic regression).
    oos_label : the label meaning out of scope.
    seed : seeds the JSONL/CSV split and the classifier.
    c_grid : the values of ``C`` tried (default :data:`C_GRID` for tfidf,
        :data:`ENCODER_C_GRID` for a sentence encoder).
    max_in_scope_drop : the validation in-scope accuracy the threshold may cost.

    Returns
    -------
    IntentModel
        With ``evaluation`` holding ``candidates`` (per ``C``: its threshold and validation
        criterion), ``curve`` (the chosen ``C``'s validation curve), ``valid`` and ``test``
        metrics.
    """
    sentence: SentenceEncoder | None = None
    if str(encoder) != "tfidf":
        from assay.models._encoder import SentenceEncoder

        with stage("load sentence encoder", progress):
            sentence = SentenceEncoder(encoder)
    grid = tuple(c_grid) if c_grid is not None else C_GRID if sentence is None else ENCODER_C_GRID
    if not grid:
        raise UsageError("c_grid must hold at least one value of C, e.g. (10.0,)")
    with stage("read intent data", progress):
        ds = (
            data
            if isinstance(data, IntentData)
            else load_intent_data(data, oos_label=oos_label, seed=seed)
        )
    train = Split(normalise(ds.train.texts), ds.train.labels)
    valid = Split(normalise(ds.valid.texts), ds.valid.labels)
    test = Split(normalise(ds.test.texts), ds.test.labels)
    features: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None = None
    if sentence is not None:
        with stage("embed train and validation texts", progress, rows=len(train) + len(valid)):
            features = (sentence.encode(train.texts), sentence.encode(valid.texts))
    candidates: dict[str, dict[str, float]] = {}
    best: tuple[float, IntentModel, list[dict[str, float]], FloatArray] | None = None
    for c in grid:
        with stage(f"fit C={c:g}", progress, rows=len(train)):
            start = time.perf_counter()
            pipe: Pipeline | EncoderHead
            if sentence is None or features is None:
                pipe = _pipeline(float(c), seed).fit(train.texts, train.labels)
            else:
                pipe = EncoderHead(sentence, _head(float(c), seed).fit(features[0], train.labels))
            seconds = time.perf_counter() - start
        classes = [str(x) for x in pipe.classes_]
        model = IntentModel(pipe, classes, oos_label, 0.0, {})
        proba = (
            model.predict_proba(valid.texts)
            if not isinstance(pipe, EncoderHead) or features is None
            else np.asarray(pipe.clf.predict_proba(features[1]), dtype=np.float64)
        )
        curve = threshold_curve(proba, classes, valid.labels, oos_label)
        t, value = choose_threshold(curve, max_in_scope_drop)
        candidates[f"{c:g}"] = {"threshold": t, "valid_criterion": value, "fit_seconds": seconds}
        if best is None or value > best[0] + 1e-12:
            model.threshold = t
            best = (value, model, curve, proba)
    assert best is not None
    _, model, curve, valid_proba = best
    model.params = {
        **_encoder_params(model.pipeline),
        "classifier": "logistic_regression",
        "C": float(_classifier(model.pipeline).C),
        "c_grid": json.dumps([float(c) for c in grid]),
        "threshold": model.threshold,
        "threshold_rule": "max OOS recall, in-scope accuracy at most max_in_scope_drop below "
        "t=0, on validation",
        "max_in_scope_drop": max_in_scope_drop,
        "oos_label": oos_label,
        "oos_class": oos_label in model.classes,
        "labels": len(model.classes),
        "layout": ds.layout,
        "rows_train": len(train),
        "rows_valid": len(valid),
        "rows_test": len(test),
        "redacted_placeholders": ds.redacted,
        "seed": seed,
    }
    evaluation: dict[str, Any] = {
        "candidates": candidates,
        "curve": curve,
        "valid": _scores(model, valid, valid_proba),
    }
    with stage("score test", progress, rows=len(test)):
        evaluation["test"] = {}
        if len(test):
            test_proba = model.predict_proba(test.texts)
            evaluation["test"] = _scores(model, test, test_proba)
            model.holdout = Holdout.of(
                test.labels,
                apply_threshold(test_proba, model.classes, model.threshold, oos_label),
                y_score=test_proba.max(axis=1).tolist(),
            )
    model.evaluation = evaluation
    return model


def _classifier(pipe: Pipeline | EncoderHead) -> LogisticRegression:
    clf: LogisticRegression = pipe.clf if isinstance(pipe, EncoderHead) else pipe.named_steps["clf"]
    return clf


def _encoder_params(pipe: Pipeline | EncoderHead) -> dict[str, Any]:
    """The encoder's settings, plain values (the model's ``params``)."""
    if isinstance(pipe, EncoderHead):
        spec = pipe.encoder.spec
        return {
            "encoder": "sentence",
            "encoder_dir": spec.name,
            "encoder_model": str(spec.config.get("_name_or_path", ""))[:200],
            "encoder_sha256": pipe.encoder.sha256,
            "encoder_layers": int(spec.config.get("num_hidden_layers", 0)),
            "encoder_dim": pipe.encoder.dim,
            "pooling": spec.pooling,
            "normalize": spec.normalize,
            "max_length": spec.max_length,
        }
    word, char = (v for _, v in pipe.named_steps["features"].transformer_list)
    return {
        "encoder": "tfidf",
        "word_ngrams": f"{WORD_NGRAMS[0]}-{WORD_NGRAMS[1]}",
        "char_ngrams": f"{CHAR_NGRAMS[0]}-{CHAR_NGRAMS[1]}",
        "token_pattern": TOKEN_PATTERN,
        "min_df": MIN_DF,
        "vocabulary_word": len(word.vocabulary_),
        "vocabulary_char": len(char.vocabulary_),
    }


# -- ONNX ---------------------------------------------------------------------------------------


def to_onnx(model: IntentModel) -> onnx.ModelProto:
    """The whole model, tokenisation included, as one ONNX graph (see the module docstring);
    for a sentence encoder, the encoder and the head as one graph, the tokenizer in the
    metadata."""
    if isinstance(model.pipeline, EncoderHead):
        return _encoder_to_onnx(model, model.pipeline)
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import StringTensorType

    from assay.models._onnx import TARGET_OPSET

    assert not isinstance(model.pipeline, EncoderHead)
    word, char = (v for _, v in model.pipeline.named_steps["features"].transformer_list)
    clf = model.pipeline.named_steps["clf"]
    options: dict[int, dict[str, Any]] = {
        id(word): {"tokenexp": TOKEN_PATTERN, "locale": LOCALE},
        id(char): {"locale": LOCALE},
        id(clf): {"zipmap": False},
    }
    with warnings.catch_warnings():
        # skl2onnx warns that analyzer="char" "may not work": the parity check below decides.
        warnings.simplefilter("ignore", UserWarning)
        proto = convert_sklearn(
            model.pipeline,
            initial_types=[(INPUT, StringTensorType([None, 1]))],
            options=options,
            target_opset=TARGET_OPSET,
        )
    outputs = [o.name for o in proto.graph.output]
    prob = next(o for o in proto.graph.output if "prob" in o.name)
    if prob.name != PROBABILITIES:
        for node in proto.graph.node:
            node.output[:] = [PROBABILITIES if x == prob.name else x for x in node.output]
        prob.name = PROBABILITIES
    assert len(outputs) == 2, outputs
    _set_metadata(proto, model, {})
    out: onnx.ModelProto = proto
    return out


def _set_metadata(proto: onnx.ModelProto, model: IntentModel, extra: dict[str, str]) -> None:
    meta = {
        META_LABELS: json.dumps(model.classes),
        META_THRESHOLD: repr(float(model.threshold)),
        META_OOS: model.oos_label,
        META_ENCODER: str(model.params.get("encoder", "tfidf")),
        **extra,
    }
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def _encoder_to_onnx(model: IntentModel, head: EncoderHead) -> onnx.ModelProto:
    """The sentence encoder's graph followed by the head's (skl2onnx), merged into one graph:
    inputs ``input_ids`` and ``attention_mask``, outputs ``label`` and ``probabilities``."""
    import onnx
    from onnx import compose
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    from assay.models._encoder import EMBEDDING, opset_of
    from assay.models._onnx import TARGET_OPSET

    clf = head.clf
    # The head in the encoder's opset: onnx.compose merges only models that agree on it.
    opsets = {**TARGET_OPSET, "": opset_of(head.encoder.graph)}
    head_proto = convert_sklearn(
        clf,
        initial_types=[("features", FloatTensorType([None, head.encoder.dim]))],
        options={id(clf): {"zipmap": False}},
        target_opset=opsets,
    )
    encoder = onnx.ModelProto()
    encoder.CopyFrom(head.encoder.graph)
    encoder.ir_version = head_proto.ir_version
    merged = compose.merge_models(
        encoder, head_proto, io_map=[(EMBEDDING, "features")], prefix2="head/"
    )
    renames = {"head/label": "label"}
    prob = next(o.name for o in merged.graph.output if "prob" in o.name)
    renames[prob] = PROBABILITIES
    for node in merged.graph.node:
        node.output[:] = [renames.get(x, x) for x in node.output]
    for out in merged.graph.output:
        out.name = renames.get(out.name, out.name)
    assert sorted(o.name for o in merged.graph.output) == ["label", PROBABILITIES]
    spec = head.encoder.spec
    _set_metadata(
        merged,
        model,
        {META_TOKENIZER: spec.tokenizer_json, META_MAX_LENGTH: str(spec.max_length)},
    )
    result: onnx.ModelProto = merged
    return result


@dataclass(frozen=True)
class Prediction:
    """One text's prediction: the label (``oos`` below the threshold), its probability (the
    highest class probability) and the ``top_k`` classes with theirs."""

    label: str
    probability: float
    top_k: list[tuple[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "probability": self.probability,
            "top_k": [{"label": k, "probability": p} for k, p in self.top_k],
        }


class IntentPredictor:
    """An exported intent model in ONNX Runtime, loaded once, called per batch.

    Thread-safe (ONNX Runtime sessions are); a server keeps one per model version.

    Parameters
    ----------
    onnx_model : the export's bytes (or proto).
    """

    def __init__(self, onnx_model: bytes | onnx.ModelProto, *, threads: int = 0) -> None:
        from assay.models._onnx import session

        raw = onnx_model if isinstance(onnx_model, bytes) else onnx_model.SerializeToString()
        self._setup(session(raw, threads=threads))

    @classmethod
    def from_session(cls, sess: onnxruntime.InferenceSession) -> IntentPredictor:
        """A predictor on a session already made (a server that opened it to read its kind)."""
        predictor = cls.__new__(cls)
        predictor._setup(sess)
        return predictor

    def _setup(self, sess: onnxruntime.InferenceSession) -> None:
        meta = dict(sess.get_modelmeta().custom_metadata_map)
        if META_LABELS not in meta:
            raise UsageError(
                "this ONNX model is not an assay intent model (no assay.intent.labels "
                "metadata); train one with `assay models train intent`"
            )
        self.classes: list[str] = json.loads(meta[META_LABELS])
        self.threshold = float(meta[META_THRESHOLD])
        self.oos_label = meta[META_OOS]
        self.encoder = meta.get(META_ENCODER, "tfidf")
        self.session: onnxruntime.InferenceSession = sess
        self._tokenizer: Tokenizer | None = None
        if META_TOKENIZER in meta:
            from assay.models._encoder import make_tokenizer

            self._tokenizer = make_tokenizer(meta[META_TOKENIZER], int(meta[META_MAX_LENGTH]))

    def probabilities(self, texts: Sequence[str]) -> FloatArray:
        """Class probabilities of prepared texts (see :func:`prepare`), float64 ``[N, K]``."""
        if not texts:
            return np.empty((0, len(self.classes)))
        if self._tokenizer is not None:
            from assay.models._encoder import encode_batches

            proba32 = encode_batches(self.session, self._tokenizer, texts, output=PROBABILITIES)
            return np.asarray(proba32, dtype=np.float64)
        feed = np.asarray(list(texts), dtype=object).reshape(-1, 1)
        (proba,) = self.session.run([PROBABILITIES], {INPUT: feed})
        return np.asarray(proba, dtype=np.float64)

    def predict(
        self, texts: Sequence[str], *, top_k: int = 3, redact: bool = True
    ) -> list[Prediction]:
        """Redact (unless ``redact=False``) and normalise ``texts``, score them, apply the
        threshold.

        Redaction makes a text look like the training texts (``<EMAIL>`` and the other
        placeholders are what the model learnt) and costs most of a one-text call (about
        10 ms here, see ``benchmarks/intent_clinc.py``); nothing is stored either way."""
        if top_k < 1:
            raise UsageError(f"top_k must be >= 1 (got {top_k})")
        proba = self.probabilities(prepare(texts) if redact else normalise(texts))
        labels = apply_threshold(proba, self.classes, self.threshold, self.oos_label)
        k = min(top_k, len(self.classes))
        order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        out = []
        for row, label, idx in zip(proba, labels, order, strict=True):
            top = [(self.classes[i], float(row[i])) for i in idx]
            out.append(Prediction(label, float(row[idx[0]]), top))
        return out


def predict_intent(
    ref: str, texts: Sequence[str], *, registry: Registry, top_k: int = 3
) -> list[dict[str, Any]]:
    """Predict with a registered intent model (``NAME``, ``NAME@ALIAS``, ``NAME/VERSION``).

    Loads the session each call; a server builds one :class:`IntentPredictor` per version
    instead and calls :meth:`IntentPredictor.predict` per batch.
    """
    _, raw = registry.load_onnx(ref)
    return [p.to_dict() for p in IntentPredictor(raw).predict(texts, top_k=top_k)]


def parity(model: IntentModel, proto: onnx.ModelProto, texts: Sequence[str]) -> float:
    """Largest |ONNX probability - scikit-learn probability| over prepared ``texts``."""
    if not texts:
        return 0.0
    native = model.predict_proba(texts)
    exported = IntentPredictor(proto).probabilities(texts)
    return float(np.max(np.abs(native - exported)))


# -- registry -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntentOutcome:
    """What :func:`register_intent` did: the version, the model, the export's parity."""

    version: VersionRef
    model: IntentModel
    onnx_max_abs_diff: float

    def summary(self) -> dict[str, Any]:
        ev = self.model.evaluation
        return {
            "model": str(self.version),
            "C": self.model.params["C"],
            "threshold": self.model.threshold,
            "labels": len(self.model.classes),
            "onnx_max_abs_diff": self.onnx_max_abs_diff,
            "valid": ev["valid"],
            "test": ev["test"],
        }


def _flat_metrics(model: IntentModel, diff: float) -> dict[str, float]:
    metrics = {"onnx_max_abs_diff": diff}
    for part in ("valid", "test"):
        for key, value in model.evaluation.get(part, {}).items():
            if value == value:  # MLflow refuses NaN on some stores: leave undefined ones out
                metrics[f"{part}_{key}"] = float(value)
    return metrics


def register_intent(
    reg: Registry,
    model: IntentModel,
    name: str = "intent",
    *,
    parity_texts: Sequence[str] = (),
    lock: Callable[[], Any] | None = None,
) -> IntentOutcome:
    """Export ``model`` to ONNX, check it against scikit-learn on ``parity_texts`` (prepared
    texts, e.g. the test part), and register it as a new version of ``name``."""
    from contextlib import nullcontext

    from assay.models._registry import TAG_PREFIX

    proto = to_onnx(model)
    diff = parity(model, proto, parity_texts)
    if not diff <= PARITY_TOLERANCE:
        raise UsageError(
            f"the ONNX export's probabilities differ from scikit-learn's by up to {diff:.2e} "
            f"(expected <= {PARITY_TOLERANCE:g}); report this with the data's layout"
        )
    tags = {
        TAG_PREFIX + "kind": "intent",
        TAG_PREFIX + "label": "intent",
        TAG_PREFIX + "encoder": str(model.params.get("encoder", "tfidf")),
        TAG_PREFIX + "labels": json.dumps(model.classes)[:5000],
        TAG_PREFIX + "oos_label": model.oos_label,
        TAG_PREFIX + "threshold": repr(float(model.threshold)),
    }
    texts = {
        "evaluation/evaluation.json": json.dumps(
            {"params": model.params, "classes": model.classes, **model.evaluation},
            indent=2,
            sort_keys=True,
            allow_nan=True,
        )
    }
    if model.holdout is not None:
        texts[HOLDOUT_JSON] = json.dumps(model.holdout.to_dict())
    with (lock or nullcontext)():
        version = reg.register(
            name,
            proto,
            inputs=([], [INPUT]),
            params=model.params,
            metrics=_flat_metrics(model, diff),
            tags=tags,
            texts=texts,
        )
    return IntentOutcome(version, model, diff)


def train_intent_model(
    ws: Workspace,
    data: str | Path,
    *,
    name: str = "intent",
    encoder: Encoder = "tfidf",
    oos_label: str = "oos",
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> IntentOutcome:
    """Train an intent model on ``data``, export it, check parity on the test part, and
    register it in the workspace's registry (the write under the workspace lock)."""
    from assay.models._lifecycle import registry
    from assay.models._registry import check_name

    check_name(name)
    ds = load_intent_data(data, oos_label=oos_label, seed=seed)
    model = train_intent(ds, encoder=encoder, oos_label=oos_label, seed=seed, progress=progress)
    check = normalise(ds.test.texts or ds.valid.texts)
    with stage("export onnx and register", progress):
        return register_intent(
            registry(ws),
            model,
            name,
            parity_texts=check,
            lock=lambda: ws.lock.hold(ws.settings.lock_timeout_seconds),
        )
