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

- ``alert`` column: the flags at the default threshold (the one the cross-validation chose),
  scored as a 0/1 score: what a person paging on ``alert`` gets.

**Cross-validation.** The choices made on this data (the slow channel's ``smooth`` rows, none
to 288; ``seen``, the count that makes an extreme familiar, none to 40; ``reference_max``, the
log likelihood above which a row is no seasonal reference, 0.1 to 1 (off); and the threshold
of the episode rule) are re-chosen inside 3 folds of series (series sorted by name, fold
``i % 3``): for each fold, the grid point and threshold whose ``alert`` column scores best
(standard profile) on the other two folds are applied, unchanged, to the held-out fold; the
held-out raw scores are summed and normalised like NAB's.
That is the estimate for series the method was not tuned on. The seasonal lag (a week) and
``quiet`` (20) are fixed at what every fold chose in the previous round's cross-validation
(``benchmarks/RESULTS.md``); the rest are HTM's defaults.

**Speed.** ``series_alerts`` on a 20,000-row series of 5-minute rows (three channels), the
best of three runs.

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
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from assay.anomaly import SeriesWarning, read_series, series_alerts

# the scores before the episode rule, to apply that rule at each threshold of the grid
from assay.anomaly._alerts import _Channel, _log_scores, episodes

SHARED = Path(__file__).resolve().parents[2] / "shared"
NAB = SHARED / "data" / "nab-dev"
SCORER = SHARED / "tools" / "nab_score.py"
GRID = {"smooth": (1, 144, 288), "seen": (0, 10, 20, 40), "reference_max": (1.0, 0.1, 0.2, 0.3)}
THRESHOLDS = (0.5, 0.51, 0.52, 0.53, 0.54, 0.56, 0.58, 0.6)
QUIET = 20
# alert_scores' other defaults (HTM's windows; cap as chosen before)
FIXED = {"window": 288, "cap": 20.0, "long_window": 8640, "short_window": 1, "min_periods": 30}
FOLDS = 3


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


def _weights(nab_score: ModuleType, data: dict[str, Any], w: Any) -> dict[str, Any]:
    """Per series: the first scored row (after the probation) and each row's (weight, window)."""
    windows = json.loads((NAB_DIR / "labels" / "combined_windows.json").read_text())
    out = {}
    for rel, (stamps, _) in data.items():
        times = [nab_score._ts(t) for t in stamps]
        pts = nab_score.file_points(times, [0.0] * len(times), windows[rel], rel, w)
        out[rel] = (len(times) - len(pts), [(ws, key) for _, ws, key in pts])
    return out


def _raw(weights: Any, flags: np.ndarray, w: dict[str, float]) -> float:
    """NAB's raw score of one series' alerts: the first alert in a window, every other one."""
    offset, rows = weights
    best = {key: -w["fn"] for _, key in rows if key is not None}
    fp = 0.0
    for i in np.flatnonzero(flags[offset:]):
        ws, key = rows[i]
        if key is None:
            fp += ws
        else:
            best[key] = max(best[key], ws)
    return sum(best.values()) + fp


def _windows(names: Sequence[str]) -> int:
    windows = json.loads((NAB_DIR / "labels" / "combined_windows.json").read_text())
    return sum(len(windows[r]) for r in names)


def _normalised(raw: float, n_windows: int, w: dict[str, float]) -> float:
    null = -w["fn"] * n_windows
    return 100 * (raw - null) / (w["tp"] * n_windows - null)


def _input_flags(series: Any, alert: np.ndarray) -> np.ndarray:
    """The ``alert`` column on the input's rows, as ``series_alerts`` gives it."""
    first = np.zeros(len(series.rows), dtype=np.bool_)
    first[np.unique(series.rows, return_index=True)[1]] = True
    return np.asarray(alert[series.rows] & first)


def cross_validate(nab_score: ModuleType, data: dict[str, Any]) -> tuple[float, list[str]]:
    """Held-out standard score of the ``alert`` column: grid point and threshold chosen on the
    other folds (the threshold is the episode rule's, so the flags are recomputed for each)."""
    w = nab_score.PROFILES["standard"]
    weights = _weights(nab_score, data, w)
    names = sorted(data)
    folds = [names[k::FOLDS] for k in range(FOLDS)]
    grid = [dict(zip(GRID, v, strict=True)) for v in itertools.product(*GRID.values())]
    raw: dict[tuple[int, float], dict[str, float]] = {}
    for g, params in enumerate(grid):
        for rel, (_, s) in data.items():
            lag = () if s.week is None else (s.week,)
            settings = _Channel(**FIXED, seen=params["seen"])
            log_score = _log_scores(
                s.values, settings, lag, params["smooth"], params["reference_max"]
            )
            full = np.zeros(len(s.values))
            for thr in THRESHOLDS:
                full[:] = 0
                full[~np.isnan(s.values)] = episodes(log_score, thr, QUIET)[1]
                flags = _input_flags(s, full.astype(bool))
                raw.setdefault((g, thr), {})[rel] = _raw(weights[rel], flags, w)
    total, notes = 0.0, []
    for k, test in enumerate(folds):
        train = [r for j, f in enumerate(folds) if j != k for r in f]
        (g, thr), _ = max(raw.items(), key=lambda kv: sum(kv[1][r] for r in train))
        held = sum(raw[(g, thr)][r] for r in test)
        total += held
        notes.append(
            f"fold {k + 1}: chose {grid[g]}, threshold {thr}; held-out "
            f"{_normalised(held, _windows(test), w):.1f} on {len(test)} series"
        )
    (g, thr), best = max(raw.items(), key=lambda kv: sum(kv[1].values()))
    notes.append(
        f"all 31 series: chose {grid[g]}, threshold {thr} "
        f"({_normalised(sum(best.values()), _windows(names), w):.1f})"
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
            flags = table.column("alert").to_numpy(zero_copy_only=False).astype(float)
            _write(out / "flags", "alert", stamps, flags, rel)
        print("alert_score (assay anomalies series), all 31 dev series:")
        print(_run_scorer(args.nab, out / "assay", "alert_score"), end="")
        print("alert column (flags at the default threshold), all 31 dev series:")
        print(_run_scorer(args.nab, out / "flags", "alert"), end="")
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

    estimate, notes = cross_validate(nab_score, data)
    print(
        f"alert column, cross-validated standard score ({FOLDS} folds by series, grid {GRID},"
        f" thresholds {THRESHOLDS}): {estimate:.1f}"
    )
    for note in notes:
        print("  " + note)
    print(f"series_alerts on 20,000 rows of 5-minute data: {_speed():.2f} s (best of 3)")
    return 0


def _speed(n: int = 20_000) -> float:
    """Seconds for series_alerts on n rows of a noisy daily cycle, 5-minute steps."""
    from time import perf_counter

    import pyarrow as pa

    from assay.anomaly import regularize

    rng = np.random.default_rng(0)
    t = np.arange(n, dtype=np.int64) * 300_000_000
    x = 10 + np.sin(2 * np.pi * np.arange(n) / 288) + rng.normal(0, 0.3, n)
    series = regularize(pa.array(t, pa.timestamp("us")), x)
    best = float("inf")
    for _ in range(3):
        start = perf_counter()
        series_alerts(series)
        best = min(best, perf_counter() - start)
    return best


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
