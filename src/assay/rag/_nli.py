"""A local NLI cross-encoder judge on ONNX Runtime (no torch, nothing downloads).

The model directory holds an NLI cross-encoder exported to ONNX (for instance one of the
``cross-encoder/nli-*`` models through ``optimum-cli export onnx``):

- ``model.onnx`` (or ``onnx/model.onnx``): inputs ``input_ids`` and ``attention_mask`` (int64
  ``[N, L]``), optionally ``token_type_ids``; first output the logits ``[N, labels]``;
- ``tokenizer.json``: the model's fast tokenizer (the ``tokenizers`` package), which encodes a
  (premise, hypothesis) pair with its own special tokens;
- ``config.json`` with ``id2label``; the label whose name starts with ``entail`` (any case) is
  entailment. ``max_position_embeddings`` bounds the tokens per pair (512 when absent).

Per claim: premise = the contexts joined by a blank line, hypothesis = the claim; the pair is
truncated from the premise's end (``only_first``) when longer than the model takes. The
entailment probability is the softmax of the logits at the entailment label; the verdict is
``supported`` when it is at least ``threshold`` (default 0.5), else ``unsupported``. The session
runs with one intra-op thread (as assay's model serving does): the pipeline's threads give the
parallelism.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assay._errors import UsageError
from assay.rag._judge import ClaimVerdict, Judgement, no_claims, split_claims

INSTALL_HINT = "pip install 'assay[rag]'"
EXPECTED_LAYOUT = (
    "an NLI cross-encoder exported to ONNX: model.onnx (or onnx/model.onnx), tokenizer.json "
    "and config.json with id2label naming an entailment label"
)
#: Claims per ONNX Runtime call.
BATCH_SIZE = 32


def _import(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError as exc:  # pragma: no cover - the rag extra brings them
        raise UsageError(f"the NLI judge needs {name}: {INSTALL_HINT}") from exc


class NLIJudge:
    """Groundedness from a local NLI cross-encoder (see the module docstring).

    Parameters
    ----------
    path : the model directory.
    threshold : entailment probability at or above which a claim is supported.
    """

    def __init__(self, path: str | Path, *, threshold: float = 0.5) -> None:
        if not 0.0 < threshold < 1.0:
            raise UsageError(f"the NLI threshold must be in (0, 1) (got {threshold}); 0.5 default")
        root = Path(path)
        if not root.is_dir():
            raise UsageError(
                f"--nli-dir must be a directory (got {str(path)[-80:]!r}); expected "
                f"{EXPECTED_LAYOUT}"
            )
        onnx_file = next(
            (p for p in (root / "model.onnx", root / "onnx" / "model.onnx") if p.is_file()), None
        )
        present = sorted(p.name for p in root.iterdir())[:12]
        missing = [
            name
            for name, ok in (
                ("model.onnx", onnx_file is not None),
                ("tokenizer.json", (root / "tokenizer.json").is_file()),
                ("config.json", (root / "config.json").is_file()),
            )
            if not ok
        ]
        if missing or onnx_file is None:
            raise UsageError(
                f"{root.name!r} has no {', '.join(missing)} (found {present}); expected "
                f"{EXPECTED_LAYOUT}"
            )
        try:
            config = json.loads((root / "config.json").read_text(encoding="utf-8"))
            id2label = {int(k): str(v) for k, v in dict(config["id2label"]).items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise UsageError(
                f"config.json in {root.name!r} has no readable id2label; expected {EXPECTED_LAYOUT}"
            ) from None
        entail = [i for i, label in id2label.items() if label.lower().startswith("entail")]
        if len(entail) != 1:
            raise UsageError(
                f"config.json's id2label {sorted(id2label.values())[:6]} names no single "
                "entailment label; expected one label starting with 'entail'"
            )
        self.entailment_index = entail[0]
        self.labels = len(id2label)
        self.threshold = threshold
        self.path = root
        max_length = int(config.get("max_position_embeddings", 512))

        tokenizers = _import("tokenizers")
        self._tokenizer = tokenizers.Tokenizer.from_file(str(root / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=max_length, strategy="only_first")
        pad = self._tokenizer.padding or {}
        self._tokenizer.enable_padding(
            pad_id=int(pad.get("pad_id", 0)), pad_token=str(pad.get("pad_token", "[PAD]"))
        )
        ort = _import("onnxruntime")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(onnx_file), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        needed = {"input_ids", "attention_mask"}
        if not needed <= self._inputs:
            raise UsageError(
                f"model.onnx takes inputs {sorted(self._inputs)[:6]}; expected input_ids and "
                "attention_mask (optionally token_type_ids)"
            )
        # The folder's name and a digest of its weights and tokenizer: two models in folders
        # of the same name never share cached verdicts.
        digest = hashlib.sha256()
        for part in (onnx_file, root / "tokenizer.json", root / "config.json"):
            with part.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        self._model = f"{root.name}:{digest.hexdigest()[:12]}"

    @property
    def judge_id(self) -> str:
        return "nli"

    @property
    def model(self) -> str:
        return self._model

    @property
    def prompt_version(self) -> str:
        return f"entail>={self.threshold:g}"

    def entailment(self, premise: str, hypotheses: Sequence[str]) -> np.ndarray[Any, Any]:
        """The entailment probability of each hypothesis given the premise."""
        out: list[np.ndarray[Any, Any]] = []
        for start in range(0, len(hypotheses), BATCH_SIZE):
            pairs = [(premise, h) for h in hypotheses[start : start + BATCH_SIZE]]
            encs = self._tokenizer.encode_batch(pairs)
            feed = {
                "input_ids": np.asarray([e.ids for e in encs], dtype=np.int64),
                "attention_mask": np.asarray([e.attention_mask for e in encs], dtype=np.int64),
            }
            if "token_type_ids" in self._inputs:
                feed["token_type_ids"] = np.asarray([e.type_ids for e in encs], dtype=np.int64)
            logits = np.asarray(self._session.run(None, feed)[0], dtype=np.float64)
            if logits.ndim != 2 or logits.shape[1] != self.labels:
                raise UsageError(
                    f"model.onnx returned logits of shape {logits.shape}; expected "
                    f"[pairs, {self.labels}] as config.json's id2label says"
                )
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            out.append(shifted[:, self.entailment_index] / shifted.sum(axis=1))
        return np.concatenate(out) if out else np.zeros(0)

    def judge(self, answer: str, contexts: Sequence[str]) -> Judgement:
        claims = split_claims(answer)
        if not claims:
            return no_claims()
        probs = self.entailment("\n\n".join(contexts), claims)
        return Judgement(
            claims=tuple(
                ClaimVerdict(
                    c,
                    "supported" if p >= self.threshold else "unsupported",
                    f"entailment probability {p:.3f}",
                )
                for c, p in zip(claims, probs, strict=True)
            )
        )
