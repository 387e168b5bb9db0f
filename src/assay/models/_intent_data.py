"""Reading intent data: CLINC150's JSON layout, JSONL or CSV of ``text,label``; redacted.

Layouts (chosen by the file's content, not its name):

- **CLINC150 JSON**: one object with ``train``, ``val`` and ``test`` (lists of
  ``[text, intent]`` pairs) and optionally ``oos_train``, ``oos_val``, ``oos_test`` (the same,
  every intent ``oos``). The splits are used as given: validation is ``val`` + ``oos_val``,
  test is ``test`` + ``oos_test``. Out-of-scope pairs are relabelled to the ``oos_label``.
- **JSONL**: one object per line with string fields ``text`` and ``label``.
- **CSV**: a header naming ``text`` and ``label`` columns (others ignored).

JSONL and CSV hold one pool of rows, split here, stratified by label and seeded: 70% train,
15% validation, 15% test (:data:`SPLIT_FRACTIONS`). Every label needs at least
:data:`MIN_PER_LABEL` rows so each part holds it.

Every utterance goes through :func:`assay.privacy.redact_array` when it is read, before
anything trains on it or stores it. Errors never quote an utterance: they name the file, the
line or row, and the field.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from assay._errors import NotFoundError, UsageError
from assay.privacy import redact_array

#: (validation, test) fractions of a JSONL/CSV pool.
SPLIT_FRACTIONS = (0.15, 0.15)
#: Fewest rows of a label in a JSONL/CSV pool (one for each part, and more for training).
MIN_PER_LABEL = 5
_CLINC_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    """Redacted utterances and their labels, one part of the data."""

    texts: list[str]
    labels: list[str]

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class IntentData:
    """The three parts of an intent data set, redacted.

    ``layout`` is ``clinc``, ``jsonl`` or ``csv``; ``redacted`` counts the placeholders
    written over all parts.
    """

    train: Split
    valid: Split
    test: Split
    layout: str
    redacted: int

    def labels(self) -> list[str]:
        """Every label of the training part, sorted."""
        return sorted(set(self.train.labels))


def _redact(texts: list[str]) -> tuple[list[str], int]:
    redacted, counts = redact_array(pa.array(texts, type=pa.string()))
    return [str(t) for t in redacted.to_pylist()], int(sum(counts.to_pylist()))


def _pairs(obj: Any, key: str, where: str) -> list[tuple[str, str]]:
    if not isinstance(obj, list):
        raise UsageError(
            f"{where}: {key!r} must be a list of [text, intent] pairs (got "
            f"{type(obj).__name__}); see CLINC150's data_full.json"
        )
    out = []
    for i, item in enumerate(obj):
        if not (
            isinstance(item, list | tuple)
            and len(item) == 2
            and isinstance(item[0], str)
            and isinstance(item[1], str)
        ):
            shape = (
                f"{type(item).__name__} of length {len(item)}"
                if hasattr(item, "__len__")
                else type(item).__name__
            )
            raise UsageError(
                f"{where}: {key}[{i}] must be a [text, intent] pair of two strings (got a "
                f"{shape}); fix that entry or export the data as JSONL with text and label"
            )
        out.append((item[0], item[1]))
    return out


def _clinc(obj: dict[str, Any], where: str, oos_label: str) -> dict[str, list[tuple[str, str]]]:
    missing = [k for k in _CLINC_SPLITS if k not in obj]
    if missing:
        raise UsageError(
            f"{where}: a JSON object is read as CLINC150's layout and needs the keys train, "
            f"val and test (missing: {', '.join(missing)}; found: "
            f"{', '.join(sorted(map(str, obj))[:10]) or 'none'}); or give JSONL/CSV of text,label"
        )
    parts: dict[str, list[tuple[str, str]]] = {}
    for key in _CLINC_SPLITS:
        rows = _pairs(obj[key], key, where)
        oos = _pairs(obj.get(f"oos_{key}", []), f"oos_{key}", where)
        parts[key] = rows + [(text, oos_label) for text, _ in oos]
    return parts


def _jsonl(raw: str, where: str) -> list[tuple[str, str]]:
    rows = []
    for n, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"{where}: line {n} is not JSON ({exc.msg} at column {exc.colno}); JSONL holds "
                'one object per line, e.g. {"text": "...", "label": "book_flight"}'
            ) from None
        if not isinstance(obj, dict):
            raise UsageError(
                f"{where}: line {n} is a JSON {type(obj).__name__}, expected an object with "
                "string fields text and label"
            )
        for field in ("text", "label"):
            if not isinstance(obj.get(field), str):
                got = "missing" if field not in obj else type(obj[field]).__name__
                raise UsageError(
                    f"{where}: line {n}: field {field!r} must be a string (got {got}); every "
                    "line needs text and label"
                )
        rows.append((obj["text"], obj["label"]))
    return rows


def _csv(raw: str, where: str) -> list[tuple[str, str]]:
    reader = csv.DictReader(io.StringIO(raw))
    header = reader.fieldnames or []
    missing = [f for f in ("text", "label") if f not in header]
    if missing:
        raise UsageError(
            f"{where}: a CSV file needs a header with columns text and label (missing: "
            f"{', '.join(missing)}; header has {len(header)} column(s)); add the header line "
            "text,label"
        )
    rows = []
    for n, rec in enumerate(reader, start=2):
        text, label = rec.get("text"), rec.get("label")
        if text is None or label is None or None in rec:
            raise UsageError(
                f"{where}: row {n} does not have the header's {len(header)} columns; quote "
                "fields holding commas"
            )
        rows.append((text, label))
    return rows


def _stratified(
    rows: list[tuple[str, str]], where: str, seed: int
) -> dict[str, list[tuple[str, str]]]:
    counts = Counter(label for _, label in rows)
    few = sorted(label for label, c in counts.items() if c < MIN_PER_LABEL)
    if few:
        raise UsageError(
            f"{where}: every label needs at least {MIN_PER_LABEL} rows to be split into train, "
            f"validation and test ({len(few)} label(s) have fewer, e.g. {few[0][:60]!r}); add "
            "rows or merge rare labels"
        )
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for i, (_, label) in enumerate(rows):
        by_label.setdefault(label, []).append(i)
    parts: dict[str, list[tuple[str, str]]] = {"train": [], "val": [], "test": []}
    for label in sorted(by_label):
        idx = rng.permutation(by_label[label])
        n = len(idx)
        n_val = max(1, round(n * SPLIT_FRACTIONS[0]))
        n_test = max(1, round(n * SPLIT_FRACTIONS[1]))
        parts["val"] += [rows[i] for i in idx[:n_val]]
        parts["test"] += [rows[i] for i in idx[n_val : n_val + n_test]]
        parts["train"] += [rows[i] for i in idx[n_val + n_test :]]
    return parts


def load_intent_data(
    source: str | Path | dict[str, Any], *, oos_label: str = "oos", seed: int = 0
) -> IntentData:
    """Read an intent data set (see the module docstring for layouts), split and redacted.

    ``source`` is a path, or an already-parsed CLINC150-layout object. ``clinc150`` and
    ``clinc150-small`` name the copies shipped in the package (:data:`SHIPPED`) where no file
    of that name exists.

    Raises
    ------
    NotFoundError
        If the path does not exist.
    UsageError
        If the content matches no layout, or a row is malformed (the message names the line,
        never its text).
    """
    if isinstance(source, dict):
        where, layout = "data", "clinc"
        parts = _clinc(source, where, oos_label)
    else:
        path = Path(source)
        if not path.exists() and str(source) in SHIPPED:
            path = clinc150_path(small=str(source) == "clinc150-small")
        where = path.name
        if not path.is_file():
            raise NotFoundError(
                f"no intent data file at {path}; give a JSONL/CSV file of text,label or a "
                "CLINC150-layout JSON file (or clinc150 / clinc150-small, the copies shipped "
                "with assay)"
            )
        try:
            raw = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{where}: not UTF-8 text; save the file as UTF-8") from None
        stripped = raw.lstrip()
        obj: Any = None
        if stripped.startswith("{"):
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError:
                obj = None  # several objects: JSONL
        if isinstance(obj, dict) and not {"text", "label"} <= set(obj):
            layout, parts = "clinc", _clinc(obj, where, oos_label)
        elif stripped.startswith("{"):
            layout, parts = "jsonl", _stratified(_jsonl(raw, where), where, seed)
        elif stripped:
            layout, parts = "csv", _stratified(_csv(raw, where), where, seed)
        else:
            raise UsageError(
                f"{where}: the file is empty; give JSONL/CSV of text,label or CLINC150's JSON"
            )
    splits = {}
    total = 0
    for key, rows in parts.items():
        texts, n = _redact([t for t, _ in rows]) if rows else ([], 0)
        total += n
        splits[key] = Split(texts, [label for _, label in rows])
    if not splits["train"].labels or len(set(splits["train"].labels)) < 2:
        raise UsageError(
            f"{where}: training needs at least 2 labels (got {len(set(splits['train'].labels))})"
        )
    if not splits["val"].labels:
        raise UsageError(f"{where}: the validation part is empty; CLINC's val must hold rows")
    return IntentData(splits["train"], splits["val"], splits["test"], layout, total)


#: Names of the data sets shipped in the package, usable in place of a path.
SHIPPED = ("clinc150", "clinc150-small")


def clinc150_path(*, small: bool = False) -> Path:
    """The CLINC150 file shipped in the package (``data_full.json``, or ``data_small.json``:
    10 intents, for tests and quick demos)."""
    from importlib.resources import files

    name = "data_small.json" if small else "data_full.json"
    return Path(str(files("assay") / "data" / "clinc150" / name))


def subset(
    data: dict[str, Any], *, intents: Sequence[str], per_intent: int, oos_per_split: dict[str, int]
) -> dict[str, Any]:
    """A CLINC150-layout subset: the first ``per_intent`` pairs of each of ``intents`` in
    ``train`` and a fifth of that (at least 2) in ``val`` and ``test``; the first
    ``oos_per_split[key]`` pairs of each ``oos_*`` part. Deterministic (file order)."""
    keep = set(intents)
    out: dict[str, Any] = {}
    for key, n in (
        ("train", per_intent),
        ("val", max(2, per_intent // 5)),
        ("test", max(2, per_intent // 5)),
    ):
        taken: Counter[str] = Counter()
        rows = []
        for text, intent in data[key]:
            if intent in keep and taken[intent] < n:
                taken[intent] += 1
                rows.append([text, intent])
        out[key] = rows
        oos_key = f"oos_{key}"
        out[oos_key] = [list(p) for p in data.get(oos_key, [])[: oos_per_split.get(oos_key, 0)]]
    return out
