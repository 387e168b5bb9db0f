"""Writing a synthetic data set to disk: event files plus ``truth.json``."""

from __future__ import annotations

import gzip as gzip_module
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from assay._errors import UsageError
from assay.synth._generate import (
    merge_session_labels,
    session_labels,
    simulate_day,
    to_jsonl,
    to_table,
    truth,
)
from assay.synth._jsonl import Writable, write_lines
from assay.synth._predictions import predictions as make_predictions
from assay.synth._world import SynthConfig, build_world

#: zlib level of ``gzip=True`` output: level 1 is several times faster than the default 9 and
#: still shrinks these files about 5x.
GZIP_LEVEL = 1

_Rendered = tuple[int, int, pa.Table | list[pa.Array], dict[str, list[Any]]]


@dataclass(frozen=True)
class SynthOutput:
    """What :func:`write` wrote.

    Attributes
    ----------
    files : tuple of Path
        The event files, in day order: ``events-0001.jsonl`` (or ``.jsonl.gz``, ``.parquet``)
        holds the sessions that start on the first day (with the events of those that run
        past midnight), and so on. A day without sessions has no file.
    truth_path : Path
        ``truth.json``, equal to :func:`assay.synth.truth` of the config.
    events : int
        Number of events written.
    truth : dict
        The content of ``truth.json`` (as :func:`assay.synth.truth` returns it).
    predictions_path : Path or None
        The predictions file, when one was asked for.
    """

    files: tuple[Path, ...]
    truth_path: Path
    events: int
    truth: dict[str, Any]
    predictions_path: Path | None = None


def _produce(config: SynthConfig, fmt: str) -> Iterator[_Rendered]:
    """Each day's (day, events, rendering), computed on two threads, yielded in day order.

    numpy and Arrow's kernels release the GIL, so two days progress at once on two cores; every
    day draws from its own random stream, so the result does not depend on the scheduling.
    """
    world = build_world(config)

    def work(day: int) -> _Rendered:
        data = simulate_day(world, day)
        rendered = to_table(world, data) if fmt == "parquet" else to_jsonl(world, data)
        return day, data.num_events, rendered, session_labels(world, data)

    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = [pool.submit(work, d) for d in range(min(2, config.days))]
        for day in range(config.days):
            result = pending.pop(0).result()
            if day + 2 < config.days:
                pending.append(pool.submit(work, day + 2))
            yield result


def write(
    out_dir: Path,
    config: SynthConfig,
    *,
    format: Literal["jsonl", "parquet"] = "jsonl",
    gzip: bool = False,
    progress: Callable[[int], None] | None = None,
    predictions: Path | None = None,
    with_session_labels: bool = True,
) -> SynthOutput:
    """Write a synthetic data set: one events file per day, and ``truth.json``.

    Parameters
    ----------
    out_dir : Path
        Folder to write into (created if missing). Existing ``events-*`` files of the same
        format are overwritten, others are left alone.
    config : SynthConfig
        What to generate. The same config writes the same bytes.
    format : {"jsonl", "parquet"}, default "jsonl"
        ``jsonl``: one JSON object per line, fields in schema order, absent fields omitted (never
        ``null``), ``event_time`` an RFC 3339 string or, for about 1% of events, integer epoch
        milliseconds. ``parquet``: the tables of :func:`assay.synth.generate` (zstd), where
        absent fields are null and every ``event_time`` is a string.
    gzip : bool, default False
        Gzip the JSON Lines files (``.jsonl.gz``; deterministic: no name or time in the
        header). Not allowed with ``parquet``, which compresses internally.
    progress : callable, optional
        Called after each file is written with the number of events in it (an increment, as
        ``rich.progress.Progress.advance`` takes).
    predictions : Path, optional
        Also write a CSV file of predictions to evaluate (``assay evaluate``): a handoff model's
        ``y_score`` against the label ``y_true`` for 3,000 sessions, with ``tenant_id``,
        ``locale`` and ``platform`` to slice by, the model worse in one locale
        (``truth.json``'s ``predictions`` says which). Put it outside ``out_dir``:
        ``assay ingest`` would read a CSV there as events.
    with_session_labels : bool, default True
        Store ``session_labels`` in ``truth.json`` (each session's true label probabilities,
        about 100 bytes per session, on one compact line); False leaves them out.

    Returns
    -------
    SynthOutput
        The files written and the number of events.

    Raises
    ------
    UsageError
        If ``format`` is unknown, or ``gzip`` is asked for with ``parquet``.
    """
    if format not in ("jsonl", "parquet"):
        raise UsageError(f"format must be 'jsonl' or 'parquet' (got {format!r})")
    if gzip and format == "parquet":
        raise UsageError("gzip=True applies to JSON Lines only; Parquet files compress internally")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = ".parquet" if format == "parquet" else ".jsonl.gz" if gzip else ".jsonl"
    files: list[Path] = []
    total = 0
    labels: list[dict[str, list[Any]]] = []
    for day, n, rendered, day_labels in _produce(config, format):
        labels.append(day_labels)
        if n == 0:
            continue
        path = out_dir / f"events-{day + 1:04d}{suffix}"
        if isinstance(rendered, pa.Table):
            pq.write_table(rendered, path, compression="zstd", row_group_size=100_000)
        else:
            lines = rendered
            with path.open("wb") as raw:
                if gzip:
                    with gzip_module.GzipFile(
                        filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=0
                    ) as zipped:
                        _write_all(zipped, lines)
                else:
                    _write_all(raw, lines)
        files.append(path)
        total += n
        if progress is not None:
            progress(n)
    truth_path = out_dir / "truth.json"
    facts = truth(config)
    text = json.dumps(facts, indent=2, ensure_ascii=False)
    if with_session_labels:
        facts["session_labels"] = merge_session_labels(labels)
        compact = json.dumps(facts["session_labels"], ensure_ascii=False, separators=(",", ":"))
        text = text[: text.rindex("}")].rstrip() + ',\n  "session_labels": ' + compact + "\n}"
    truth_path.write_text(text + "\n", encoding="utf-8")
    if predictions is not None:
        predictions = Path(predictions)
        predictions.parent.mkdir(parents=True, exist_ok=True)
        pacsv.write_csv(make_predictions(build_world(config)), predictions)
    return SynthOutput(
        files=tuple(files),
        truth_path=truth_path,
        events=total,
        truth=facts,
        predictions_path=predictions,
    )


def _write_all(out: Writable, lines: list[pa.Array]) -> None:
    for chunk in lines:
        write_lines(out, chunk)
