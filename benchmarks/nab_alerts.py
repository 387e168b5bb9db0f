"""NAB score of ``alert_score`` (``assay anomalies series``) on the development half of NAB.

Issue 12, item 1: the online ``alert_score`` column must be a score a person can page on. Each
series of ``../shared/data/nab-dev`` (31 of NAB's 58, with their labelled windows) is read with
:func:`assay.anomaly.read_series` and scored with :func:`assay.anomaly.series_alerts`, the
functions ``assay anomalies series`` runs for these columns (one row per input row, in the
input's order). The results are written in NAB's layout (``timestamp,alert_score`` per series)
and scored by NAB's rules with ``../shared/tools/nab_score.py`` (threshold chosen once for the
corpus), for the three profiles. Alongside, in the same run:

- ``raw robust z``: step 1 of the alert score alone (``min(z, cap) / cap``), no likelihood and
  no episode rule, written again in this file as a baseline;
- ``ARTime`` and ``Numenta HTM``: their published per-row scores, through the same scorer.

**Cross-validation.** The choices made on this data (the seasonal lag: none, a day or a week;
``quiet``; the rest are HTM's defaults) are re-chosen inside 3 folds of series (series sorted
by name, fold ``i % 3``): for each fold, the grid point and the corpus threshold that score
best (standard profile) on the other two folds are applied, unchanged, to the held-out fold;
the held-out raw scores are summed and normalised like NAB's. That is the estimate for series
the method was not tuned on.

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/nab_alerts.py [--nab DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from assay.anomaly import SeriesWarning, alert_scores, read_series, series_alerts

SHARED = Path(__file__).resolve().parents[2] / "shared"
NAB = SHARED / "data" / "nab-dev"
SCORER = SHARED / "tools" / "nab_score.py"
# seasonal lag in days (0: none); series_alerts uses 7 (one week of rows)
GRID = {"lag_days": (0, 1, 7), "quiet": (10, 20, 50)}
FOLDS = 3

Scores = dict[str, np.ndarray]


def _scorer() -> ModuleType:
    sys.path.insert(0, str(SCORER.parent))
    import nab_score

    return nab_score


def _series(nab: Path) -> dict[str, tuple[list[str], Any]]:
    """For each labelled series: its timestamp strings (as written) and its RegularSeries."""
    names = sorted(json.loads((nab / "labels" / "combined_windows.json").read_text()))
    out = {}
    for rel in names:
        path = nab / "data" / rel
        with path.open(newline="") as f:
            stamps = [row["timestamp"] for row in csv.DictReader(f)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SeriesWarning)  # NAB repeats and skips times
            series = read_series(path, time_col="timestamp", value_col="value")
        out[rel] = (stamps, series)
    return out


def _write(out: Path, column: str, stamps: list[str], scores: np.ndarray, rel: str) -> None:
    path = out / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", column])
        w.writerows((t, repr(float(s))) for t, s in zip(stamps, scores, strict=True))


def _run_scorer(nab: Path, results: Path, column: str, prefix: str = "") -> str:
    cmd = [sys.executable, str(SCORER), str(nab), str(results), "--column", column]
    if prefix:
        cmd += ["--prefix", prefix]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def _on_rows(series: Any, grid_scores: np.ndarray) -> np.ndarray:
    return np.asarray(grid_scores[series.rows])


def _points(
    nab_score: ModuleType, data: dict[str, Any], scores: Scores, names: Sequence[str], w: Any
) -> list[Any]:
    windows = json.loads((NAB_DIR / "labels" / "combined_windows.json").read_text())
    pts: list[Any] = []
    for rel in names:
        times = [nab_score._ts(t) for t in data[rel][0]]
        pts += nab_score.file_points(times, list(scores[rel]), windows[rel], rel, w)
    return pts


def _at(points: list[Any], w: dict[str, float], threshold: float) -> float:
    """Raw NAB score of detections at a fixed threshold (first detection per window counts)."""
    best: dict[str, float] = {}
    fp = 0.0
    for score, weight, key in points:
        if key is not None:
            best.setdefault(key, -w["fn"])
            if score >= threshold:
                best[key] = max(best[key], weight)
        elif score >= threshold:
            fp += weight
    return sum(best.values()) + fp


def _windows(names: Sequence[str]) -> int:
    windows = json.loads((NAB_DIR / "labels" / "combined_windows.json").read_text())
    return sum(len(windows[r]) for r in names)


def _normalised(raw: float, n_windows: int, w: dict[str, float]) -> float:
    null = -w["fn"] * n_windows
    return 100 * (raw - null) / (w["tp"] * n_windows - null)


def cross_validate(
    nab_score: ModuleType, data: dict[str, Any], score_of: Callable[..., Scores]
) -> tuple[float, list[str]]:
    """Held-out standard score: parameters and threshold chosen on the other folds."""
    w = nab_score.PROFILES["standard"]
    names = sorted(data)
    folds = [names[k::FOLDS] for k in range(FOLDS)]
    grid = [dict(zip(GRID, v, strict=True)) for v in itertools.product(*GRID.values())]
    scored = [score_of(**params) for params in grid]
    total, notes = 0.0, []
    for k, test in enumerate(folds):
        train = [r for j, f in enumerate(folds) if j != k for r in f]
        fits = []
        for params, scores in zip(grid, scored, strict=True):
            raw, thr = nab_score.corpus_best(_points(nab_score, data, scores, train, w), w)
            fits.append((raw, thr, params, scores))
        raw, thr, params, scores = max(fits, key=lambda f: f[0])
        held = _at(_points(nab_score, data, scores, test, w), w, thr)
        total += held
        notes.append(
            f"fold {k + 1}: chose {params}, threshold {thr:.4f}; held-out "
            f"{_normalised(held, _windows(test), w):.1f} on {len(test)} series"
        )
    return _normalised(total, _windows(names), w), notes


NAB_DIR = NAB


def main(argv: list[str] | None = None) -> int:
    global NAB_DIR
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nab", type=Path, default=NAB, help="NAB development half")
    parser.add_argument("--out", type=Path, default=None, help="keep the results here")
    args = parser.parse_args(argv)
    NAB_DIR = args.nab
    if not (args.nab / "labels" / "combined_windows.json").is_file() or not SCORER.is_file():
        print(f"skipped: no NAB data at {args.nab} (or no scorer at {SCORER})")
        return 0
    nab_score = _scorer()
    data = _series(args.nab)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        for rel, (stamps, series) in data.items():
            table = series_alerts(series)
            _write(
                out / "assay", "alert_score", stamps, table.column("alert_score").to_numpy(), rel
            )
        print("alert_score (assay anomalies series), all 31 dev series:")
        print(_run_scorer(args.nab, out / "assay", "alert_score"), end="")
        print("baseline, raw robust z (no likelihood, no episode rule):")
        for rel, (stamps, s) in data.items():
            _write(out / "rawz", "alert_score", stamps, _on_rows(s, _raw_z(s.values)), rel)
        print(_run_scorer(args.nab, out / "rawz", "alert_score"), end="")
        for name, prefix in (("ARTime", "ARTime_"), ("numenta", "numenta_")):
            print(f"published {name}:")
            print(
                _run_scorer(args.nab, args.nab / "published" / name, "anomaly_score", prefix),
                end="",
            )

    def score_of(lag_days: int, **params: Any) -> Scores:
        out = {}
        for rel, (_, s) in data.items():
            lag = () if s.week is None or not lag_days else (s.week * lag_days // 7,)
            out[rel] = _on_rows(s, alert_scores(s.values, periods=lag, **params)[0])
        return out

    estimate, notes = cross_validate(nab_score, data, score_of)
    print(f"cross-validated standard score ({FOLDS} folds by series, grid {GRID}): {estimate:.1f}")
    for note in notes:
        print("  " + note)
    return 0


def _raw_z(values: np.ndarray, window: int = 288, cap: float = 20.0) -> np.ndarray:
    """Baseline, written here: min(z, cap) / cap of the robust z against the rows before."""
    out = np.zeros(len(values))
    for t in range(30, len(values)):
        past = values[max(0, t - window) : t]
        past = past[~np.isnan(past)]
        if len(past) < 30 or np.isnan(values[t]):
            continue
        med = np.median(past)
        scale = max(1.4826 * np.median(np.abs(past - med)), 1e-3 * abs(med) + 1e-12)
        out[t] = min(abs(values[t] - med) / scale, cap) / cap
    return out


if __name__ == "__main__":
    raise SystemExit(main())
