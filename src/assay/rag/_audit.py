"""Measured trust in a judge: people label a stratified sample of judged answers, and every
report shows each judge's agreement with them.

The workflow (``docs/rag.md``, "Auditing a judge"):

1. :func:`audit_sample` draws ``n`` judged answers of one judge, stratified by tenant, release
   (``model_version/prompt_template`` of the stored event, ``-`` for a missing part;
   ``unknown`` when the event is not in the workspace) and the judge's answer-level verdict;
   :func:`write_sample` writes them as JSONL or CSV with an empty ``human_label`` column
   (the judge's verdict is not in the file: people label blind).
2. People fill ``human_label`` with ``grounded`` or ``not_grounded`` (blank: not labelled).
3. :func:`audit_import` validates the file and stores the labels in the ``rag_audit_labels``
   Delta table (the newest label of an answer wins).
4. :func:`agreement` compares every stored judge with the labels.

Answer-level verdict: an answer is ``grounded`` when its score (supported / claims) is at
least ``grounded_at`` (default 1.0: every claim supported), else ``not_grounded``; an answer
whose judgement is an error has no verdict and is neither sampled nor compared.

Agreement, over the n answers both labelled and judged (no error):

- Cohen's kappa ``(p_o - p_e) / (1 - p_e)``, with ``p_o`` the share of answers where judge and
  people agree and ``p_e = sum_k p_judge(k) p_people(k)`` the agreement expected by chance
  (undefined, None, when ``p_e = 1``: both always gave the same single label), with a seeded
  percentile bootstrap interval over answers (resamples where kappa is undefined are skipped);
- precision of "not grounded" = answers both call not grounded / answers the judge calls not
  grounded, and recall = the same / answers people call not grounded, each with a Wilson 95%
  interval (:func:`assay.evaluation.wilson_interval`); None when the denominator is 0.

Sampling: proportional allocation (largest remainders) with at least one answer per stratum
when ``n`` is at least the number of strata, so small strata (a rare tenant's ungrounded
answers) are slightly over-represented; agreement is computed unweighted over the sample.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa

from assay._errors import NotFoundError, UsageError
from assay.evaluation import wilson_interval
from assay.rag._judge import (
    Judge,
    JudgeInput,
    append_rows,
    judge_answers,
    judgements,
    newest_rows,
)
from assay.rag._lexical import LexicalJudge
from assay.rag._nli import NLIJudge
from assay.rag._openai import OpenAIJudge

if TYPE_CHECKING:
    from assay.store import Settings, Workspace

GROUNDED = "grounded"
NOT_GROUNDED = "not_grounded"
LABELS = (GROUNDED, NOT_GROUNDED)
LABELS_TABLE = "rag_audit_labels"
LABELS_SCHEMA = pa.schema(
    [
        pa.field("tenant_id", pa.string(), nullable=False),
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("human_label", pa.string(), nullable=False),
        pa.field("labelled_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)
SAMPLE_COLUMNS = ("tenant_id", "event_id", "release", "human_label")
AGREEMENT_COLUMNS = (
    "judge",
    "model",
    "n",
    "kappa",
    "kappa_low",
    "kappa_high",
    "precision_not_grounded",
    "precision_low",
    "precision_high",
    "recall_not_grounded",
    "recall_low",
    "recall_high",
    "judge_not_grounded",
    "people_not_grounded",
    "errors",
)


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters' labels of the same items (None when undefined).

    Examples
    --------
    >>> cohen_kappa(["g", "g", "n", "n"], ["g", "n", "n", "n"])
    0.5
    """
    if len(a) != len(b):
        raise ValueError(f"two raters need labels of the same items (got {len(a)} and {len(b)})")
    n = len(a)
    if n == 0:
        return None
    p_o = sum(x == y for x, y in zip(a, b, strict=True)) / n
    p_e = sum((a.count(k) / n) * (b.count(k) / n) for k in set(a) | set(b))
    if p_e >= 1.0:
        return None
    return (p_o - p_e) / (1.0 - p_e)


@dataclass(frozen=True)
class Agreement:
    """A judge's agreement with people (see the module docstring for the definitions)."""

    n: int
    kappa: float | None
    kappa_interval: tuple[float, float] | None
    precision: float | None
    precision_interval: tuple[float, float] | None
    recall: float | None
    recall_interval: tuple[float, float] | None
    judge_not_grounded: int
    people_not_grounded: int


def agreement_of(
    judge_labels: Sequence[str], people_labels: Sequence[str], *, n_boot: int = 1000, seed: int = 0
) -> Agreement:
    """Agreement of a judge's answer-level labels with people's on the same answers.

    Examples
    --------
    >>> a = agreement_of(["not_grounded", "grounded", "grounded", "not_grounded"],
    ...                  ["not_grounded", "grounded", "not_grounded", "not_grounded"], n_boot=0)
    >>> a.kappa, a.precision, round(a.recall, 4)
    (0.5, 1.0, 0.6667)
    """
    j = list(judge_labels)
    p = list(people_labels)
    kappa = cohen_kappa(j, p)
    interval: tuple[float, float] | None = None
    if kappa is not None and n_boot > 0:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, len(j), size=(n_boot, len(j)))
        boots = [
            k
            for row in idx
            if (k := cohen_kappa([j[i] for i in row], [p[i] for i in row])) is not None
        ]
        if boots:
            lo, hi = np.percentile(boots, [2.5, 97.5])
            interval = (float(lo), float(hi))
    both = sum(x == NOT_GROUNDED and y == NOT_GROUNDED for x, y in zip(j, p, strict=True))
    judged_ng = j.count(NOT_GROUNDED)
    people_ng = p.count(NOT_GROUNDED)

    def rate(k: int, n: int) -> tuple[float | None, tuple[float, float] | None]:
        return (k / n, wilson_interval(k, n)) if n else (None, None)

    precision, p_int = rate(both, judged_ng)
    recall, r_int = rate(both, people_ng)
    return Agreement(
        n=len(j),
        kappa=kappa,
        kappa_interval=interval,
        precision=precision,
        precision_interval=p_int,
        recall=recall,
        recall_interval=r_int,
        judge_not_grounded=judged_ng,
        people_not_grounded=people_ng,
    )


def _verdict_sql(grounded_at: float) -> str:
    return f"CASE WHEN score >= {float(grounded_at)!r} THEN '{GROUNDED}' ELSE '{NOT_GROUNDED}' END"


def _releases(ws: Workspace, judged: pa.Table) -> pa.Table:
    """``tenant_id, event_id, release`` of judged answers from the stored events."""
    files = ws.files("events")
    keys = judged.select(["tenant_id", "event_id"])
    with ws.duckdb() as con:
        con.register("keys", keys)
        if not files:
            sql = "SELECT tenant_id, event_id, 'unknown' AS release FROM keys"
            return con.sql(sql).to_arrow_table()
        sql = (
            "SELECT k.tenant_id, k.event_id, coalesce(any_value(CASE WHEN e.event_id IS NOT NULL "
            "THEN coalesce(e.model_version, '-') || '/' || coalesce(e.prompt_template, '-') END), "
            "'unknown') AS release FROM keys k "
            "LEFT JOIN read_parquet(?, hive_partitioning = true) e "
            "ON e.tenant_id = k.tenant_id AND e.event_id = k.event_id "
            "GROUP BY k.tenant_id, k.event_id"
        )
        return con.sql(sql, params=[files]).to_arrow_table()


def _pick_judge(table: pa.Table, judge: str | None) -> tuple[str, str]:
    pairs = sorted({(r["judge"], r["model"]) for r in table.select(["judge", "model"]).to_pylist()})
    if not pairs:
        raise NotFoundError(
            "no stored judgements in this workspace; run `assay rag judge --input FILE` first"
        )
    chosen = [p for p in pairs if judge is None or judge in (p[0], f"{p[0]}:{p[1]}")]
    if len(chosen) != 1:
        names = ", ".join(f"{j}:{m}" for j, m in pairs)
        which = "several judges are" if judge is None else f"--judge {judge!r} matches"
        raise UsageError(f"{which} {len(chosen)} of the stored ({names}); pass --judge with one")
    return chosen[0]


def audit_sample(
    ws: Workspace, n: int, *, judge: str | None = None, grounded_at: float = 1.0, seed: int = 0
) -> pa.Table:
    """A stratified sample of ``n`` judged answers of one judge (module docstring), columns
    :data:`SAMPLE_COLUMNS` with ``human_label`` empty; fewer rows when fewer were judged."""
    if n < 1:
        raise UsageError(f"--n must be at least 1 (got {n})")
    stored = judgements(ws)
    name, model = _pick_judge(stored, judge)
    with ws.duckdb() as con:
        con.register("stored", stored)
        judged = con.sql(
            f"SELECT tenant_id, event_id, {_verdict_sql(grounded_at)} AS verdict FROM stored "
            "WHERE judge = ? AND model = ? AND score IS NOT NULL ORDER BY tenant_id, event_id",
            params=[name, model],
        ).to_arrow_table()
        releases = _releases(ws, judged)
        con.register("judged", judged)
        con.register("releases", releases)
        rows = (
            con.sql(
                "SELECT j.tenant_id, j.event_id, r.release, j.verdict FROM judged j "
                "JOIN releases r USING (tenant_id, event_id) "
                "ORDER BY j.tenant_id, r.release, j.verdict, j.event_id"
            )
            .to_arrow_table()
            .to_pylist()
        )
    strata: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        strata.setdefault((row["tenant_id"], row["release"], row["verdict"]), []).append(row)
    sizes = {k: len(v) for k, v in strata.items()}
    take = allocate(sizes, n)
    rng = np.random.default_rng(seed)
    picked: list[dict[str, Any]] = []
    for key in sorted(strata):
        members = strata[key]
        for i in sorted(rng.choice(len(members), size=take[key], replace=False)):
            picked.append(members[int(i)])
    return pa.Table.from_pylist(
        [{**{c: r[c] for c in SAMPLE_COLUMNS[:3]}, "human_label": ""} for r in picked],
        schema=pa.schema([(c, pa.string()) for c in SAMPLE_COLUMNS]),
    )


def allocate(sizes: dict[Any, int], n: int) -> dict[Any, int]:
    """Sample sizes per stratum: one per stratum first when ``n`` allows, the rest
    proportional to what each stratum has left, by largest remainders (ties to the larger
    stratum); never more than a stratum holds; total ``min(n, sum)``.

    Examples
    --------
    >>> allocate({"a": 90, "b": 9, "c": 1}, 10)
    {'a': 7, 'b': 2, 'c': 1}
    """
    total = sum(sizes.values())
    n = min(n, total)
    keys = sorted(sizes, key=lambda k: (-sizes[k], str(k)))
    take = dict.fromkeys(keys, 0)
    if n >= len(keys):
        for k in keys:
            take[k] = 1
    left = n - sum(take.values())
    while left > 0:
        room = {k: sizes[k] - take[k] for k in keys if sizes[k] > take[k]}
        weight = sum(room.values())
        quota = {k: left * room[k] / weight for k in room}
        floors = {k: min(room[k], int(quota[k])) for k in room}
        for k, f in floors.items():
            take[k] += f
        left -= sum(floors.values())
        for k in sorted(room, key=lambda k: (-(quota[k] - int(quota[k])), keys.index(k))):
            if left == 0:
                break
            if take[k] < sizes[k]:
                take[k] += 1
                left -= 1
    return {k: take[k] for k in sorted(take, key=str)}


def write_sample(
    sample: pa.Table, path: Path | None, *, texts: dict[tuple[str, str], dict[str, Any]] | None
) -> str:
    """The sample as JSONL (default) or CSV (``.csv`` path), with ``answer`` and ``contexts``
    from ``texts`` when given (keyed by tenant and event); written to ``path`` or returned."""
    rows = sample.to_pylist()
    if texts is not None:
        for row in rows:
            found = texts.get((row["tenant_id"], row["event_id"]), {})
            row["answer"] = found.get("answer", "")
            row["contexts"] = list(found.get("contexts", ()))
    if path is not None and path.suffix.lower() == ".csv":
        buf = io.StringIO()
        columns = list(rows[0]) if rows else list(SAMPLE_COLUMNS)
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            if "contexts" in row:
                row["contexts"] = json.dumps(row["contexts"], ensure_ascii=False)
            writer.writerow(row)
        text = buf.getvalue()
    else:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if path is not None:
        path.write_text(text, encoding="utf-8")
    return text


def _normal_label(raw: object) -> str | None:
    value = str(raw if raw is not None else "").strip().lower().replace("-", "_").replace(" ", "_")
    return value or None


def read_labels(path: Path) -> tuple[list[dict[str, str]], int]:
    """Labelled rows of an audit file (CSV by extension, else JSONL) and how many were blank.

    Every row needs ``tenant_id``, ``event_id`` and ``human_label`` (``grounded`` or
    ``not_grounded``; case, spaces and hyphens are forgiven; blank: not labelled).
    """
    if not path.is_file():
        raise NotFoundError(f"no such file: {path}; pass the file `assay rag audit sample` wrote")
    text = path.read_text(encoding="utf-8")
    records: list[tuple[int, dict[str, Any]]] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        records = [(reader.line_num, dict(r)) for r in reader]  # a record's last line
    else:
        # Split at \n only: str.splitlines also breaks at U+2028 or U+0085 inside a JSON string.
        for n, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError:
                raise UsageError(
                    f"line {n} of {path.name} is not JSON; expected one object per line with "
                    "tenant_id, event_id and human_label"
                ) from None
            if not isinstance(value, dict):
                raise UsageError(f"line {n} of {path.name} is not a JSON object")
            records.append((n, value))
    out: list[dict[str, str]] = []
    blank = 0
    for n, record in records:
        missing = [c for c in ("tenant_id", "event_id", "human_label") if c not in record]
        if missing:
            raise UsageError(
                f"line {n} of {path.name} has no {', '.join(missing)}; every row needs "
                "tenant_id, event_id and human_label (as `assay rag audit sample` writes them)"
            )
        label = _normal_label(record["human_label"])
        if label is None:
            blank += 1
            continue
        if label not in LABELS:
            raise UsageError(
                f"line {n} of {path.name}: human_label must be grounded or not_grounded (got "
                f"{str(record['human_label'])[:30]!r}); leave it blank for an unlabelled answer"
            )
        out.append(
            {
                "tenant_id": str(record["tenant_id"]),
                "event_id": str(record["event_id"]),
                "human_label": label,
            }
        )
    return out, blank


@dataclass(frozen=True)
class ImportSummary:
    """What :func:`audit_import` stored."""

    labelled: int
    blank: int
    grounded: int
    not_grounded: int


def audit_import(ws: Workspace, path: Path) -> ImportSummary:
    """Validate an audit file (:func:`read_labels`) and store its labels in ``rag_audit_labels``."""
    rows, blank = read_labels(path)
    now = datetime.now(UTC)
    table = pa.Table.from_pylist([{**r, "labelled_at": now} for r in rows], schema=LABELS_SCHEMA)
    append_rows(ws, LABELS_TABLE, table)
    ng = sum(r["human_label"] == NOT_GROUNDED for r in rows)
    return ImportSummary(labelled=len(rows), blank=blank, grounded=len(rows) - ng, not_grounded=ng)


def labels(ws: Workspace) -> pa.Table:
    """The newest human label of each answer (:data:`LABELS_SCHEMA`)."""
    return newest_rows(ws, LABELS_TABLE, LABELS_SCHEMA, ("tenant_id", "event_id"), "labelled_at")


def agreement(
    ws: Workspace, *, grounded_at: float = 1.0, n_boot: int = 1000, seed: int = 0
) -> pa.Table:
    """Each stored judge's agreement with people's labels, one row per (judge, model), columns
    :data:`AGREEMENT_COLUMNS` (empty when nothing is labelled)."""
    people = labels(ws)
    stored = judgements(ws)
    out: list[dict[str, Any]] = []
    if people.num_rows and stored.num_rows:
        with ws.duckdb() as con:
            con.register("people", people)
            con.register("stored", stored)
            pairs = (
                con.sql(
                    "SELECT s.judge, s.model, s.score IS NULL AS error, "
                    f"{_verdict_sql(grounded_at)} AS verdict, p.human_label FROM stored s "
                    "JOIN people p USING (tenant_id, event_id) "
                    "ORDER BY s.judge, s.model, s.tenant_id, s.event_id"
                )
                .to_arrow_table()
                .to_pylist()
            )
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in pairs:
            groups.setdefault((row["judge"], row["model"]), []).append(row)
        for (name, model), rows in groups.items():
            ok = [r for r in rows if not r["error"]]
            a = agreement_of(
                [r["verdict"] for r in ok], [r["human_label"] for r in ok], n_boot=n_boot, seed=seed
            )
            out.append(
                {
                    "judge": name,
                    "model": model,
                    "n": a.n,
                    "kappa": a.kappa,
                    "kappa_low": a.kappa_interval[0] if a.kappa_interval else None,
                    "kappa_high": a.kappa_interval[1] if a.kappa_interval else None,
                    "precision_not_grounded": a.precision,
                    "precision_low": a.precision_interval[0] if a.precision_interval else None,
                    "precision_high": a.precision_interval[1] if a.precision_interval else None,
                    "recall_not_grounded": a.recall,
                    "recall_low": a.recall_interval[0] if a.recall_interval else None,
                    "recall_high": a.recall_interval[1] if a.recall_interval else None,
                    "judge_not_grounded": a.judge_not_grounded,
                    "people_not_grounded": a.people_not_grounded,
                    "errors": len(rows) - len(ok),
                }
            )
    schema = pa.schema(
        [
            (
                c,
                pa.string()
                if c in ("judge", "model")
                else pa.int64()
                if c in _COUNTS
                else pa.float64(),
            )
            for c in AGREEMENT_COLUMNS
        ]
    )
    return pa.Table.from_pylist(out, schema=schema)


_COUNTS = {"n", "judge_not_grounded", "people_not_grounded", "errors"}


# -- the judge of a run, and its report ---------------------------------------------------------
JudgeName = Literal["auto", "lexical", "openai", "nli"]


def make_judge(
    name: JudgeName,
    settings: Settings,
    *,
    nli_dir: Path | None = None,
    threshold: float | None = None,
    **openai_options: Any,
) -> Judge:
    """The judge ``name`` names: ``auto`` is ``nli`` with ``nli_dir``, else ``openai`` when
    ``judge_url`` is set, else the lexical baseline. ``threshold`` is the lexical overlap or
    the NLI entailment probability (each judge's default when None)."""
    if name == "auto":
        name = "nli" if nli_dir is not None else "openai" if settings.judge_url else "lexical"
    if name == "lexical":
        return LexicalJudge() if threshold is None else LexicalJudge(threshold=threshold)
    if name == "nli":
        if nli_dir is None:
            raise UsageError("--judge nli needs --nli-dir, the folder of an ONNX NLI model")
        return NLIJudge(nli_dir) if threshold is None else NLIJudge(nli_dir, threshold=threshold)
    return OpenAIJudge.from_settings(settings, **openai_options)


@dataclass(frozen=True)
class JudgeReport:
    """A judge run's summary and every stored judge's agreement with people."""

    summary: dict[str, Any]
    agreement: pa.Table


def judge_report(
    ws: Workspace, judge: Judge, items: Sequence[JudgeInput], **options: Any
) -> JudgeReport:
    """Judge and store (:func:`~assay.rag._judge.judge_answers`, which takes ``options``:
    ``concurrency``, ``use_cache``, ``progress``), close the judge, then the agreement table."""
    try:
        run = judge_answers(ws, judge, items, **options)
    finally:
        close = getattr(judge, "close", None)
        if callable(close):
            close()
    return JudgeReport(summary=run.summary(), agreement=agreement(ws))
