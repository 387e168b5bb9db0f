"""Readers of labelled retrieval sets: relevance judgements (qrels), runs and per-query fields.

Formats (``docs/rag.md``):

- TREC qrels: ``query_id iteration doc_id relevance`` per line, whitespace-separated; the
  iteration column is ignored, relevance is an integer (``>= 1`` is relevant, as in trec_eval).
- TREC run: ``query_id Q0 doc_id rank score tag``; as in trec_eval the rank column is ignored
  and documents are ordered by score, descending, ties broken by doc_id, descending.
- JSONL qrels: one object per line with ``query_id``, ``doc_id``, ``relevance``.
- JSONL run: ``query_id``, ``doc_id`` and ``score`` (higher first) or ``rank`` (1 first; read as
  the score ``-rank``, so equal ranks are ordered by doc_id, descending, like equal scores).
- JSONL queries: ``query_id`` and any per-query fields (``tenant_id``, ``locale``, ...).

Other keys of a JSONL qrels or run line are per-query fields too (for slicing with ``by``); a
query must carry the same value on each of its lines. Blank lines and lines starting with ``#``
are skipped. The format is sniffed from the first other line (``{`` starts JSONL) unless given.

Errors name the file, the line, what was expected, what came and how to fix it; they never
repeat a query or document id (ids may be personal data), only numbers' text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from assay._errors import NotFoundError, UsageError

FileFormat = Literal["auto", "trec", "jsonl"]
#: A per-query field's value (a slice key).
FieldValue = str | int | float | bool | None

_SHOWN = 20


@dataclass(frozen=True)
class Qrels:
    """Relevance judgements: ``judgements[query_id][doc_id] = relevance`` (an integer; ``>= 1``
    is relevant), and the per-query fields found beside them."""

    judgements: Mapping[str, Mapping[str, int]]
    fields: Mapping[str, Mapping[str, FieldValue]] = field(default_factory=dict)


@dataclass(frozen=True)
class Run:
    """A ranking per query: ``scores[query_id][doc_id] = score`` (higher first; equal scores
    ordered by doc_id, descending, as trec_eval does), a name, and per-query fields."""

    scores: Mapping[str, Mapping[str, float]]
    name: str = "run"
    fields: Mapping[str, Mapping[str, FieldValue]] = field(default_factory=dict)


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "...")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"no file {path}; give the path of an existing file") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path} ({exc.strerror}); check the path") from None
    with handle:
        try:
            for number, raw in enumerate(handle, start=1):
                line = raw.strip()
                if line and not line.startswith("#"):
                    yield number, line
        except UnicodeDecodeError:
            raise UsageError(
                f"{path} is not UTF-8 text; save it as UTF-8 (TREC or JSONL lines)"
            ) from None


def _sniff(path: Path, fmt: FileFormat) -> Literal["trec", "jsonl"]:
    if fmt != "auto":
        return fmt
    for _, line in _lines(path):
        return "jsonl" if line.startswith("{") else "trec"
    return "trec"


def _where(path: Path, line: int) -> str:
    return f"{path.name}:{line}"


def _int_relevance(text: str, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(
            f"{where}: relevance must be an integer (0 not relevant, 1 or more relevant); "
            f"got {_shown(text)}. Fix the fourth column"
        ) from None


def _finite_score(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise UsageError(
            f"{where}: score must be a finite number (higher ranks first); got {_shown(text)}. "
            "Fix the fifth column"
        )
    return value


def _json_object(line: str, where: str, expected: str) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); expected one object "
            f"per line with {expected}"
        ) from None
    if not isinstance(obj, dict):
        raise UsageError(
            f"{where}: expected a JSON object with {expected}; got a {type(obj).__name__}"
        )
    return obj


def _json_id(obj: dict[str, Any], key: str, where: str, expected: str) -> str:
    if key not in obj:
        raise UsageError(f"{where}: no {key!r} key; expected an object with {expected}")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise UsageError(
            f"{where}: {key} must be a non-empty string or an integer; got "
            f"{type(value).__name__ if value != '' else 'an empty string'}"
        )
    return str(value)


def _json_number(value: object, key: str, where: str, integer: bool) -> float:
    ok = not isinstance(value, bool) and isinstance(value, int | float)
    if ok and integer and not isinstance(value, int):
        ok = isinstance(value, float) and value.is_integer()
    if not ok or not math.isfinite(float(value)):  # type: ignore[arg-type]
        kind = "an integer" if integer else "a finite number"
        got = _shown(str(value)) if isinstance(value, int | float) else type(value).__name__
        raise UsageError(f"{where}: {key} must be {kind}; got {got}")
    return float(value)  # type: ignore[arg-type]


def _add_fields(
    fields: dict[str, dict[str, FieldValue]],
    query_id: str,
    obj: dict[str, Any],
    skip: frozenset[str],
    where: str,
) -> None:
    mine = fields.setdefault(query_id, {})
    for key, value in obj.items():
        if key in skip:
            continue
        if not (value is None or isinstance(value, str | int | float | bool)):
            raise UsageError(
                f"{where}: per-query field {key!r} must be a string, number, boolean or null; "
                f"got a {type(value).__name__}. Flatten it or remove it"
            )
        if key in mine and mine[key] != value:
            raise UsageError(
                f"{where}: per-query field {key!r} differs from an earlier line of the same "
                "query; give each query one value (or move the fields to a queries file)"
            )
        mine[key] = value


def _duplicate(where: str, first: int, what: str) -> UsageError:
    return UsageError(
        f"{where}: the same query and document appear again (first on line {first}); "
        f"trec_eval rejects duplicate {what}: keep one line per query and document"
    )


def _trec_columns(line: str, where: str, layout: str, json_keys: str, want: int) -> list[str]:
    cols = line.split()
    if len(cols) != want:
        kind = "qrels" if want == 4 else "run"
        raise UsageError(
            f"{where}: expected {want} whitespace-separated columns '{layout}' (TREC {kind}); "
            f"got {len(cols)}. Fix the line, or give a JSONL file with {json_keys}"
        )
    return cols


_QRELS_JSON = "query_id, doc_id and relevance"
_RUN_JSON = "query_id, doc_id and score (or rank)"


_V = TypeVar("_V", int, float)
_Fields = dict[str, dict[str, FieldValue]]


def _read_pairs(
    path: Path,
    fmt: FileFormat,
    layout: str,
    json_keys: str,
    from_trec: Callable[[list[str], str], _V],
    from_json: Callable[[dict[str, Any], str], _V],
    what: str,
) -> tuple[dict[str, dict[str, _V]], _Fields]:
    """``table[query_id][doc_id]`` of a TREC or JSONL file, and the JSONL lines' other keys as
    per-query fields; duplicates and empty files rejected."""
    kind = _sniff(path, fmt)
    table: dict[str, dict[str, _V]] = {}
    fields: _Fields = {}
    seen: dict[tuple[str, str], int] = {}
    name, want = path.name, len(layout.split())
    for number, line in _lines(path):
        where = f"{name}:{number}"
        if kind == "trec":
            cols = _trec_columns(line, where, layout, json_keys, want)
            qid, docid, value = cols[0], cols[2], from_trec(cols, where)
        else:
            obj = _json_object(line, where, json_keys)
            qid = _json_id(obj, "query_id", where, json_keys)
            docid = _json_id(obj, "doc_id", where, json_keys)
            value = from_json(obj, where)
            skip = frozenset({"query_id", "doc_id", "relevance", "score", "rank"})
            _add_fields(fields, qid, obj, skip, where)
        if (qid, docid) in seen:
            raise _duplicate(where, seen[(qid, docid)], what)
        seen[(qid, docid)] = number
        table.setdefault(qid, {})[docid] = value
    if not table:
        raise UsageError(
            f"{path.name} holds no {what}; expected lines '{layout}' (TREC) or JSON objects "
            f"with {json_keys}"
        )
    return table, {q: f for q, f in fields.items() if f}


def read_qrels(path: str | Path, *, format: FileFormat = "auto") -> Qrels:
    """Read relevance judgements from a TREC qrels or JSONL file.

    Parameters
    ----------
    path : str or Path
        The file.
    format : {"auto", "trec", "jsonl"}
        ``auto`` sniffs the first line (``{`` starts JSONL).

    Returns
    -------
    Qrels

    Raises
    ------
    NotFoundError
        If the file does not exist.
    UsageError
        On a malformed line, a duplicate (query, document) pair, or an empty file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "qrels.txt"
    >>> _ = p.write_text("q1 0 d1 1\\nq1 0 d2 0\\n")
    >>> read_qrels(p).judgements
    {'q1': {'d1': 1, 'd2': 0}}
    """

    def from_json(obj: dict[str, Any], where: str) -> int:
        if "relevance" not in obj:
            raise UsageError(f"{where}: no 'relevance' key; expected {_QRELS_JSON}")
        return int(_json_number(obj["relevance"], "relevance", where, integer=True))

    judgements, fields = _read_pairs(
        Path(path),
        format,
        "query_id 0 doc_id relevance",
        _QRELS_JSON,
        lambda cols, where: _int_relevance(cols[3], where),
        from_json,
        "judgements",
    )
    return Qrels(judgements, fields)


def read_run(path: str | Path, *, format: FileFormat = "auto", name: str | None = None) -> Run:
    """Read a run (ranked documents per query) from a TREC run or JSONL file.

    Parameters
    ----------
    path : str or Path
        The file.
    format : {"auto", "trec", "jsonl"}
        ``auto`` sniffs the first line (``{`` starts JSONL).
    name : str, optional
        The run's name; default: the TREC tag when the file has exactly one, else the file's
        stem.

    Returns
    -------
    Run

    Raises
    ------
    NotFoundError
        If the file does not exist.
    UsageError
        On a malformed line, a duplicate (query, document) pair, a JSONL file mixing ``score``
        and ``rank``-only lines, or an empty file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "run.jsonl"
    >>> _ = p.write_text('{"query_id": "q1", "doc_id": "d1", "rank": 1}\\n')
    >>> read_run(p).scores
    {'q1': {'d1': -1.0}}
    """
    path = Path(path)
    tags: set[str] = set()
    orders: set[str] = set()

    def from_trec(cols: list[str], where: str) -> float:
        tags.add(cols[5])
        return _finite_score(cols[4], where)

    def from_json(obj: dict[str, Any], where: str) -> float:
        order = "score" if "score" in obj else "rank"
        if order not in obj:
            raise UsageError(f"{where}: no 'score' or 'rank' key; expected {_RUN_JSON}")
        if orders and order not in orders:
            raise UsageError(
                f"{where}: this line orders by {order} but earlier lines by {orders.pop()}; "
                "give every line a score, or every line a rank"
            )
        orders.add(order)
        if order == "score":
            return _json_number(obj["score"], "score", where, integer=False)
        rank = _json_number(obj["rank"], "rank", where, integer=True)
        if rank < 1:
            raise UsageError(f"{where}: rank must be 1 or more; got {rank:.0f}")
        return -rank

    scores, fields = _read_pairs(
        path,
        format,
        "query_id Q0 doc_id rank score tag",
        _RUN_JSON,
        from_trec,
        from_json,
        "ranked documents",
    )
    if name is None:
        name = next(iter(tags)) if len(tags) == 1 else path.stem
    return Run(scores, name, fields)


def read_queries(path: str | Path) -> dict[str, dict[str, FieldValue]]:
    """Read per-query fields (slice keys) from a JSONL file of ``query_id`` and fields.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "queries.jsonl"
    >>> _ = p.write_text('{"query_id": "q1", "locale": "de-DE"}\\n')
    >>> read_queries(p)
    {'q1': {'locale': 'de-DE'}}
    """
    path = Path(path)
    expected = "query_id and per-query fields such as tenant_id or locale"
    fields: dict[str, dict[str, FieldValue]] = {}
    first: dict[str, int] = {}
    for number, line in _lines(path):
        where = _where(path, number)
        obj = _json_object(line, where, expected)
        qid = _json_id(obj, "query_id", where, expected)
        if qid in first:
            raise UsageError(
                f"{where}: the same query_id appears again (first on line {first[qid]}); give "
                "each query one line"
            )
        first[qid] = number
        _add_fields(fields, qid, obj, frozenset({"query_id"}), where)
    return fields


__all__ = ["FieldValue", "FileFormat", "Qrels", "Run", "read_qrels", "read_queries", "read_run"]
