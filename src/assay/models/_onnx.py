"""ONNX export of a whole :class:`~assay.models._train.QualityModel`, and scoring with it.

The graph takes one input per feature column, named as the column (numeric: float32
``[N, 1]``, NaN where missing; categorical: string ``[N, 1]``, ``"__missing__"`` where
missing, exactly :func:`~assay.models._train.model_frame`'s columns) and has one output
``score``: the calibrated probability, float32 ``[N]``.

How it is built:

- the scikit-learn pipeline (preprocessing and classifier) is converted by skl2onnx, with
  ``zipmap=False`` so scores come out as a plain tensor, and set to output the classifier's
  **margin** (log-odds) rather than its probability: ``raw_scores=True`` for the logistic
  regression, ``post_transform="NONE"`` on LightGBM's ``TreeEnsembleClassifier`` (a float32
  probability near 0 or 1 has lost the digits calibration needs). LightGBM is not a scikit-learn
  model: its converter comes from onnxmltools (``convert_lightgbm``) and is registered with
  skl2onnx once (``update_registered_converter`` with the linear-classifier shape
  calculator), which is what lets a ``Pipeline`` holding an ``LGBMClassifier`` convert;
- LightGBM's split thresholds are doubles; the ``TreeEnsembleClassifier`` holds them as
  float32 and compares float32 inputs with them. Rounding a threshold ``t`` to the *nearest*
  float32 (what onnxmltools does) sends an input that lies between ``t`` and its rounding
  up the other way, one leaf switch in one of hundreds of trees: 1e-4 off on real-sized
  data. The export converts a copy of the booster whose thresholds are rounded *down* to
  float32 (:func:`float32_thresholds`): for a float32 input ``x``, ``x <= t`` exactly when
  ``x <= floor32(t)``, so every row takes the native model's path (the inputs are float32
  on both sides: :func:`~assay.models._train.model_frame`);
- the calibration is appended as a small subgraph written here with ``onnx.helper`` (both
  methods, so the choice made on validation never depends on what converts): Platt is
  ``Sigmoid(a * z + b)`` of the margin ``z``; isotonic is linear interpolation between its
  knots of ``q = Sigmoid(z)``, the segment found by counting the knots at or below ``q`` (a
  ``[N, K]`` comparison, so scoring runs in batches of :data:`BATCH_ROWS`).

ONNX Runtime computes in float32; the export's scores equal the native model's to about
1e-7 (the tests hold it to 1e-5 on a test set, with several hundred trees for LightGBM).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from assay._errors import UsageError
from assay.models._train import Calibrator, QualityModel, model_frame

if TYPE_CHECKING:
    import onnx
    import onnxruntime

#: The output holding the calibrated probability.
OUTPUT = "score"
#: Rows per ONNX Runtime call in :func:`onnx_scores`.
BATCH_ROWS = 65_536
#: ONNX opsets of the export (the default domain and ai.onnx.ml).
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}

_registered = threading.Lock()
_done = False


def _register_lightgbm() -> None:
    """Teach skl2onnx to convert ``LGBMClassifier`` with onnxmltools' converter (once)."""
    global _done
    with _registered:
        if _done:
            return
        from lightgbm import LGBMClassifier
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
        from skl2onnx import update_registered_converter
        from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

        update_registered_converter(
            LGBMClassifier,
            "LightGbmLGBMClassifier",
            calculate_linear_classifier_output_shapes,
            convert_lightgbm,
            options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
        )
        _done = True


def _initial_types(numeric: Sequence[str], categorical: Sequence[str]) -> list[tuple[str, Any]]:
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    types: list[tuple[str, Any]] = [(n, FloatTensorType([None, 1])) for n in numeric]
    types += [(c, StringTensorType([None, 1])) for c in categorical]
    return types


def float32_threshold(t: float) -> float:
    """The largest float32 at or below ``t`` (``-inf`` below the float32 range), as a float.

    For every float32 ``x``: ``x <= t`` if and only if ``x <= float32_threshold(t)``.

    Examples
    --------
    >>> float32_threshold(0.1) < 0.1 < float(np.float32(0.1))
    True
    >>> float32_threshold(0.5), float32_threshold(1e300), float32_threshold(-1e300)
    (0.5, 3.4028234663852886e+38, -inf)
    """
    with np.errstate(over="ignore"):
        f = np.float32(t)
    if float(f) > t:
        f = np.nextafter(f, np.float32(-np.inf))
    return float(f)


def float32_thresholds(tree: dict[str, Any]) -> None:
    """Round every numeric split threshold of a LightGBM tree dump (``dump_model()``'s
    ``tree_structure``) down to float32, in place."""
    stack = [tree]
    while stack:
        node = stack.pop()
        th = node.get("threshold")
        if isinstance(th, (int, float)) and not isinstance(th, bool):
            node["threshold"] = float32_threshold(float(th))
        stack.extend(node[k] for k in ("left_child", "right_child") if k in node)


class _DumpedBooster:
    """A stand-in booster for onnxmltools' converter (its ``is_mock`` hook): it converts
    the given ``dump_model()`` dict instead of asking LightGBM for one."""

    is_mock = True

    def __init__(self, dump: dict[str, Any]) -> None:
        self._dump = dump

    def dump_model(self) -> dict[str, Any]:
        return self._dump


def _exact_lightgbm(clf: Any) -> Any:
    """A shallow copy of a fitted ``LGBMClassifier`` whose booster converts with its
    thresholds rounded down to float32 (the native model's decisions on float32 inputs)."""
    dump = clf.booster_.dump_model()
    for tree in dump["tree_info"]:
        float32_thresholds(tree["tree_structure"])
    clone = copy.copy(clf)
    clone._Booster = _DumpedBooster(dump)
    return clone


def to_onnx(model: QualityModel) -> onnx.ModelProto:
    """The whole model (preprocessing, classifier, calibration) as one ONNX graph."""
    from skl2onnx import convert_sklearn
    from sklearn.pipeline import Pipeline

    pipeline = model.pipeline
    if model.kind == "gbdt":
        _register_lightgbm()
        steps = list(pipeline.steps)
        steps[-1] = (steps[-1][0], _exact_lightgbm(steps[-1][1]))
        pipeline = Pipeline(steps)
    clf = pipeline.steps[-1][1]
    options: dict[str, Any] = {"zipmap": False}
    if model.kind == "logistic":
        options["raw_scores"] = True
    proto = convert_sklearn(
        pipeline,
        initial_types=_initial_types(model.numeric, model.categorical),
        options={id(clf): options},
        target_opset=TARGET_OPSET,
    )
    if model.kind == "gbdt":
        _margin_output(proto)
    return _append_calibration(proto, model.calibrator)


def _margin_output(proto: onnx.ModelProto) -> None:
    """Make LightGBM's tree ensemble output its raw score (column 1) instead of a sigmoid."""
    trees = [n for n in proto.graph.node if n.op_type == "TreeEnsembleClassifier"]
    if len(trees) != 1:
        raise RuntimeError(f"expected one TreeEnsembleClassifier, found {len(trees)}")
    for attr in trees[0].attribute:
        if attr.name == "post_transform":
            attr.s = b"NONE"


def _append_calibration(proto: onnx.ModelProto, cal: Calibrator) -> onnx.ModelProto:
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    probs = next(o.name for o in graph.output if "prob" in o.name)
    nodes = []
    inits = []

    def const(name: str, value: Any, dtype: Any = np.float32) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name=f"cal_{name}"))
        return f"cal_{name}"

    def node(op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [f"cal_{out}"], **attrs))
        return f"cal_{out}"

    # z: the positive class's margin, shape [N].
    z = node("Gather", [probs, const("one", 1, np.int64)], "z", axis=1)
    if cal.method == "platt":
        lin = node("Add", [node("Mul", [z, const("a", cal.a)], "az"), const("b", cal.b)], "lin")
        out = node("Sigmoid", [lin], "p")
    else:
        col = node("Sigmoid", [z], "q")
        x = np.asarray(cal.x, dtype=np.float32)
        yk = np.asarray(cal.y, dtype=np.float32)
        if x.size < 2:
            zero = node("Mul", [col, const("0", 0.0)], "zero")
            out = node("Add", [zero, const("y0", yk[0] if yk.size else 0.0)], "p")
        else:
            qc = node("Clip", [col, const("xlo", x[0]), const("xhi", x[-1])], "qc")
            q2 = node("Unsqueeze", [qc, const("ax1", [1], np.int64)], "q2")
            ge = node("LessOrEqual", [const("inner", x[1:].reshape(1, -1)), q2], "ge")
            count = node(
                "ReduceSum",
                [node("Cast", [ge], "gei", to=TensorProto.INT64), const("ax", [1], np.int64)],
                "count",
                keepdims=0,
            )
            i = node("Min", [count, const("last", x.size - 2, np.int64)], "i")
            i1 = node("Add", [i, const("step", 1, np.int64)], "i1")
            xs, ys = const("x", x), const("y", yk)
            x0, x1 = node("Gather", [xs, i], "x0"), node("Gather", [xs, i1], "x1")
            y0, y1 = node("Gather", [ys, i], "y0"), node("Gather", [ys, i1], "y1")
            t = node("Div", [node("Sub", [qc, x0], "dq"), node("Sub", [x1, x0], "dx")], "t")
            dy = node("Sub", [y1, y0], "dy")
            out = node("Add", [y0, node("Mul", [t, dy], "tdy")], "p")
    nodes.append(helper.make_node("Identity", [out], [OUTPUT]))
    graph.node.extend(nodes)
    graph.initializer.extend(inits)
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [None]))
    return proto


def session(model: onnx.ModelProto | bytes, *, threads: int = 0) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session on the CPU for an exported model.

    ``threads`` is the session's intra-op thread count (0: ONNX Runtime's default, one per
    core, which suits batch scoring). A server answering small batches from several worker
    threads wants 1: the default pool's threads spin between calls, and measured here an
    utterance cost 6.9 ms of CPU with it against 2.1 ms with one thread, at the same latency.
    """
    import onnxruntime as ort

    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise UsageError(f"threads must be a whole number >= 0 (got {threads!r}); 0 is the default")
    raw = model if isinstance(model, bytes) else model.SerializeToString()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: keep assay's output clean
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(raw, options, providers=["CPUExecutionProvider"])


def input_names(sess: onnxruntime.InferenceSession) -> tuple[list[str], list[str]]:
    """The (numeric, categorical) input columns an exported model expects."""
    numeric = [i.name for i in sess.get_inputs() if i.type == "tensor(float)"]
    categorical = [i.name for i in sess.get_inputs() if i.type == "tensor(string)"]
    return numeric, categorical


def onnx_scores(
    sess: onnxruntime.InferenceSession, table: pa.Table, *, batch_rows: int = BATCH_ROWS
) -> npt.NDArray[np.float64]:
    """Calibrated scores of ``table``'s rows from an exported model, in row order."""
    numeric, categorical = input_names(sess)
    frame = model_frame(table, numeric, categorical)
    out = np.empty(table.num_rows, dtype=np.float64)
    for lo in range(0, table.num_rows, batch_rows):
        part = frame.iloc[lo : lo + batch_rows]
        feeds: dict[str, Any] = {n: part[n].to_numpy().reshape(-1, 1) for n in numeric}
        feeds.update({c: part[c].to_numpy().reshape(-1, 1) for c in categorical})
        (scores,) = sess.run([OUTPUT], feeds)
        out[lo : lo + len(part)] = np.asarray(scores, dtype=np.float64).reshape(-1)
    return out
