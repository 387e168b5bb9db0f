"""End-to-end column drift, sketches included, against Evidently 0.7's ``DataDriftPreset``.

Goal (issue #6): on a reference and a current table of 1 M rows x 20 columns (14 numeric, 6
categorical), read from Parquet, assay's sketch-based drift is at least 50x faster than
Evidently 0.7's ``Report(metrics=[DataDriftPreset()])`` on the same files, measured in the same
run, and the per-column verdicts are compared.

The data (seeded numpy, written once under ``$ASSAY_BENCH_DIR/drift-evidently/``): 14 numeric
columns (normal, log-normal, uniform, exponential, gamma, beta, Poisson and negative binomial
counts; one with 5% nulls in both tables) and 6 categorical ones of 5 to 50 categories (stored
as strings). The current table has drift injected in 6 columns: a shift of 0.3 standard
deviations, a scale change (x1.5), 15% nulls in a count column, changed category shares, 12%
of rows in 4 new categories, 12% nulls in a categorical column. Two more columns carry
changes too small to matter (0.05 standard deviations; a 5% scale change), the rest are
redrawn from the same distribution.

The sides, each timed from the two Parquet files to the per-column verdicts, imports excluded:

``assay``
    ``pyarrow.parquet.read_table`` of both files; per numeric column a
    ``datasketches.kll_doubles_sketch(200)`` updated with the column as a numpy array (nulls
    dropped and counted), per categorical column ``pyarrow.compute.value_counts`` (nulls
    counted apart); then ``numeric_stats_sketch`` / ``categorical_stats`` and
    ``column_verdict`` with the defaults, as ``assay drift`` does on stored profiles (standard
    deviation from the sketch). In this process, ``--repeat`` times; the median is the figure.
    Its peak RSS comes from one more run in a child (sampled from ``/proc``, interpreter and
    imports included).
``Evidently``
    ``benchmarks/evidently_child.py`` run by the separate Evidently venv's python
    (``--evidently-python``): ``pd.read_parquet`` of both files, two ``Dataset.from_pandas``
    with a ``DataDefinition`` naming the column types, ``Report([DataDriftPreset()],
    include_tests=True).run(current, reference)``, all defaults. The child times its own
    imports, read, dataset and report steps; the figure is read + dataset + report, and the
    child's wall time (interpreter start and imports included) is shown next to it. Run once.

``assay.profiles.profile_events`` is not part of assay's side: it profiles tables of the
stored events schema (tenant, day, user, ...), not arbitrary columns; the script calls it on
the reference table once to show the error it raises.

Run from the repository root (the Evidently venv first, once)::

    python3 -m venv /tmp/evidently-venv
    /tmp/evidently-venv/bin/pip install -r benchmarks/evidently-requirements.txt
    PYTHONPATH=src .venv/bin/python benchmarks/drift_vs_evidently.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from datasketches import kll_doubles_sketch

from _bench import (
    BENCH_DIR,
    ROOT,
    markdown_row,
    mib,
    note,
    print_block,
    print_machine,
    run_child,
)
from assay._errors import AssayError
from assay.drift import (
    DEFAULT_THRESHOLDS,
    categorical_stats,
    column_verdict,
    ks_sketch,
    numeric_stats_sketch,
)
from assay.profiles import profile_events

GOAL_RATIO = 50.0
KLL_K = 200
CHILD = ROOT / "benchmarks" / "evidently_child.py"
DEFAULT_EVIDENTLY_PYTHON = "/tmp/evidently-venv/bin/python"
HOW_TO_INSTALL = (
    "create it with: python3 -m venv /tmp/evidently-venv && "
    "/tmp/evidently-venv/bin/pip install -r benchmarks/evidently-requirements.txt "
    "(or pass --evidently-python / set ASSAY_EVIDENTLY_PYTHON to another venv's python)"
)

Gen = Callable[[np.random.Generator, int], np.ndarray]


@dataclass(frozen=True)
class Column:
    """One generated column: how both tables draw it, and what the current table changes."""

    name: str
    kind: str  # "numeric" or "categorical"
    reference: Gen
    current: Gen
    change: str  # "" when the current table is drawn like the reference
    drift: bool  # whether the change is meant to be flagged
    null_share: tuple[float, float] = (0.0, 0.0)  # reference, current


def _cats(
    prefix: str, k: int, weights: np.ndarray, extra: int = 0, extra_share: float = 0.0
) -> Gen:
    """Draws of ``k`` categories by ``weights``, plus ``extra`` new ones sharing ``extra_share``."""
    labels = np.array([f"{prefix}{i:02d}" for i in range(k)] + [f"new{i}" for i in range(extra)])
    p = np.asarray(weights, dtype=np.float64) / np.sum(weights) * (1.0 - extra_share)
    if extra:
        p = np.concatenate([p, np.full(extra, extra_share / extra)])

    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        return labels[rng.choice(len(labels), size=n, p=p)]

    return draw


def _zipf(k: int, s: float = 1.1) -> np.ndarray:
    return 1.0 / np.arange(1, k + 1) ** s


def columns() -> list[Column]:
    def same(gen: Gen) -> tuple[Gen, Gen]:
        return gen, gen

    n = "numeric"
    c = "categorical"
    normal: Gen = lambda r, m: r.normal(0.0, 1.0, m)  # noqa: E731 - a table of generators
    return [
        Column("normal", n, *same(normal), "", False),
        Column(
            "normal_shift",
            n,
            lambda r, m: r.normal(50.0, 10.0, m),
            lambda r, m: r.normal(53.0, 10.0, m),
            "mean +0.3 sd",
            True,
        ),
        Column("lognormal", n, *same(lambda r, m: r.lognormal(0.0, 1.0, m)), "", False),
        Column(
            "lognormal_scale",
            n,
            lambda r, m: r.lognormal(3.0, 0.5, m),
            lambda r, m: 1.5 * r.lognormal(3.0, 0.5, m),
            "values x1.5",
            True,
        ),
        Column("uniform", n, *same(lambda r, m: r.uniform(0.0, 1.0, m)), "", False),
        Column("uniform_wide", n, *same(lambda r, m: r.uniform(-5.0, 5.0, m)), "", False),
        Column("count_poisson", n, *same(lambda r, m: r.poisson(3.0, m)), "", False),
        Column(
            "count_nulls",
            n,
            *same(lambda r, m: r.poisson(20.0, m)),
            "15% nulls (0% before)",
            True,
            null_share=(0.0, 0.15),
        ),
        Column(
            "normal_nulls",
            n,
            *same(lambda r, m: r.normal(10.0, 2.0, m)),
            "",
            False,
            null_share=(0.05, 0.05),
        ),
        Column("exponential", n, *same(lambda r, m: r.exponential(2.0, m)), "", False),
        Column(
            "gamma_small_shift",
            n,
            lambda r, m: r.gamma(2.0, 2.0, m),
            # 0.05 standard deviations (the sd of gamma(2, 2) is 2 * sqrt(2)).
            lambda r, m: r.gamma(2.0, 2.0, m) + 0.05 * 2.0 * np.sqrt(2.0),
            "mean +0.05 sd (negligible)",
            False,
        ),
        Column("count_negbin", n, *same(lambda r, m: r.negative_binomial(5, 0.3, m)), "", False),
        Column(
            "normal_small_scale",
            n,
            normal,
            lambda r, m: r.normal(0.0, 1.05, m),
            "sd x1.05 (negligible)",
            False,
        ),
        Column("beta", n, *same(lambda r, m: r.beta(2.0, 5.0, m)), "", False),
        Column("cat5", c, *same(_cats("a", 5, np.array([30, 25, 20, 15, 10]))), "", False),
        Column(
            "cat10_shares",
            c,
            _cats("b", 10, _zipf(10)),
            _cats("b", 10, _zipf(10)[::-1]),
            "category shares reversed",
            True,
        ),
        Column(
            "cat20_new",
            c,
            _cats("d", 20, _zipf(20, 0.8)),
            _cats("d", 20, _zipf(20, 0.8), extra=4, extra_share=0.12),
            "12% in 4 new categories",
            True,
        ),
        Column("cat50", c, *same(_cats("e", 50, _zipf(50))), "", False),
        Column(
            "cat8_nulls",
            c,
            *same(_cats("f", 8, _zipf(8, 0.5))),
            "12% nulls (0% before)",
            True,
            null_share=(0.0, 0.12),
        ),
        Column("cat30", c, *same(_cats("g", 30, _zipf(30, 0.7))), "", False),
    ]


def _array(values: np.ndarray, kind: str, nulls: np.ndarray | None) -> pa.Array:
    if kind == "numeric":
        typ = pa.int64() if np.issubdtype(values.dtype, np.integer) else pa.float64()
    else:
        typ = pa.string()
    return pa.array(values, typ, mask=nulls)


def generate(rows: int, seed: int) -> tuple[pa.Table, pa.Table]:
    """The reference and the current table: the same columns, drift in the current one."""
    rng = np.random.default_rng(seed)
    ref: dict[str, pa.Array] = {}
    cur: dict[str, pa.Array] = {}
    for col in columns():
        for out, gen, share in (
            (ref, col.reference, col.null_share[0]),
            (cur, col.current, col.null_share[1]),
        ):
            values = gen(rng, rows)
            nulls = rng.random(rows) < share if share else None
            out[col.name] = _array(values, col.kind, nulls)
    return pa.table(ref), pa.table(cur)


def data_files(rows: int, seed: int) -> tuple[Path, Path]:
    """The two Parquet files, generated on first use and then reused."""
    folder = BENCH_DIR / "drift-evidently" / f"rows{rows}-seed{seed}"
    ref_path, cur_path = folder / "reference.parquet", folder / "current.parquet"
    done = folder / "done"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        note(f"generating 2 x {rows:,} rows x {len(columns())} columns into {folder} ...")
        start = time.perf_counter()
        ref, cur = generate(rows, seed)
        pq.write_table(ref, ref_path)
        pq.write_table(cur, cur_path)
        done.write_text("ok\n")
        note(f"  done in {time.perf_counter() - start:.1f} s")
    return ref_path, cur_path


# --- assay's side ------------------------------------------------------------------------------


def _numeric_sketch(arr: pa.ChunkedArray) -> tuple[Any, int]:
    """A KLL sketch of the column's numbers and its count of missing values (null or NaN)."""
    # A writable copy: the sketch's binding refuses Arrow's read-only zero-copy views.
    values = np.array(pc.drop_null(arr).to_numpy(), dtype=np.float64)
    sketch = kll_doubles_sketch(KLL_K)
    sketch.update(values)  # a KLL sketch skips NaN
    return sketch, arr.null_count + int(np.count_nonzero(np.isnan(values)))


def _category_counts(arr: pa.ChunkedArray) -> tuple[dict[str, int], int]:
    counts = pc.value_counts(arr)
    items = {
        v: c
        for v, c in zip(
            counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
        )
        if v is not None
    }
    return items, arr.null_count


def assay_side(
    ref_path: Path, cur_path: Path, numeric: Sequence[str], categorical: Sequence[str]
) -> dict[str, Any]:
    """Read, sketch, compare: per column the statistics, the verdict, and stage times."""
    t0 = time.perf_counter()
    ref = pq.read_table(ref_path)
    cur = pq.read_table(cur_path)
    t1 = time.perf_counter()
    num = {c: (_numeric_sketch(ref.column(c)), _numeric_sketch(cur.column(c))) for c in numeric}
    cat = {
        c: (_category_counts(ref.column(c)), _category_counts(cur.column(c))) for c in categorical
    }
    t2 = time.perf_counter()
    out: dict[str, dict[str, Any]] = {}
    for name, ((rs, rm), (cs, cm)) in num.items():
        stats = numeric_stats_sketch(rs, cs, ref_missing=rm, cur_missing=cm)
        out[name] = {"kind": "numeric", "stats": stats}
    for name, ((rc, rm), (cc, cm)) in cat.items():
        stats = categorical_stats(rc, cc, ref_missing=rm, cur_missing=cm)
        out[name] = {"kind": "categorical", "stats": stats}
    for entry in out.values():
        entry["drifted"] = column_verdict(entry["stats"], entry["kind"])
    t3 = time.perf_counter()
    return {
        "read_seconds": t1 - t0,
        "sketch_seconds": t2 - t1,
        "stats_seconds": t3 - t2,
        "seconds": t3 - t0,
        "columns": out,
        "sketches": {c: (rs, cs) for c, ((rs, _), (cs, _)) in num.items()},
    }


def ks_seconds(sketches: dict[str, tuple[Any, Any]]) -> float:
    """Time of ``ks_sketch`` alone over the numeric columns: where the stats stage goes.

    Its p-value is scipy's ``kstwo.sf(D, round(n m / (n + m)))``, whose cost grows with the
    sample size (about 0.6 s at n = 500,000 here), although ``column_verdict`` does not look
    at the p-value above 1,000 values.
    """
    start = time.perf_counter()
    for rs, cs in sketches.values():
        ks_sketch(rs, cs)
    return time.perf_counter() - start


# The assay side once in a fresh child, for its peak RSS.
ASSAY_CHILD = """
import sys
sys.path.insert(0, "benchmarks")
from drift_vs_evidently import assay_side
from pathlib import Path
r = assay_side(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3].split(","), sys.argv[4].split(","))
print(r["seconds"])
"""


def reasons(stats: dict[str, float], kind: str) -> list[str]:
    """Which of column_verdict's large-sample rules fire (the samples here are large)."""
    t = DEFAULT_THRESHOLDS
    fired = []
    if kind == "numeric" and stats["wasserstein_normed"] >= t["wasserstein_normed"]:
        fired.append("wasserstein")
    if kind == "categorical" and stats["js_distance"] >= t["js_distance"]:
        fired.append("js")
    if stats["psi"] >= t["psi"]:
        fired.append("psi")
    if abs(stats["missing_delta"]) >= t["missing_delta"] and (
        stats["missing_p_value"] < t["missing_p_value"]
    ):
        fired.append("missing")
    return fired


def explain(name: str, a: dict[str, Any], e: dict[str, Any]) -> str:
    """Why the two verdicts differ, from the rules that fired and the two scores."""
    fired = reasons(a["stats"], a["kind"])
    if a["drifted"] and fired == ["missing"]:
        return (
            f"{name}: assay flags the missing share ({a['stats']['missing_delta']:+.3f}); "
            "Evidently drops nulls before its test and compares the non-null values only"
        )
    if a["drifted"] and "psi" in fired and len(fired) == 1:
        return f"{name}: only assay's extra PSI >= 0.25 rule fires (PSI {a['stats']['psi']:.3f})"
    if a["kind"] == "categorical":
        return (
            f"{name}: JS near the threshold; assay's JS is in base 2 "
            f"({a['stats']['js_distance']:.4f}), Evidently's in base e ({e['score']:.4f}), "
            "both against 0.1"
        )
    return (
        f"{name}: scores near the threshold: assay W {a['stats']['wasserstein_normed']:.4f} "
        f"(from sketches), Evidently {e['method']} {e['score']:.4f}"
    )


def profile_events_note(ref_path: Path) -> str:
    try:
        profile_events(pq.read_table(ref_path))
    except AssayError as exc:
        return f"not applicable ({type(exc).__name__}: {exc})"
    return "ran (unexpected: the table is not of the events schema)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of each table")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of assay's side")
    parser.add_argument(
        "--evidently-python",
        default=os.environ.get("ASSAY_EVIDENTLY_PYTHON", DEFAULT_EVIDENTLY_PYTHON),
        help="python of the benchmark-only Evidently venv (env ASSAY_EVIDENTLY_PYTHON)",
    )
    args = parser.parse_args()
    if not Path(args.evidently_python).exists():
        sys.exit(f"the Evidently python {args.evidently_python} does not exist; {HOW_TO_INSTALL}")
    cols = columns()
    numeric = [c.name for c in cols if c.kind == "numeric"]
    categorical = [c.name for c in cols if c.kind == "categorical"]
    print_machine()
    ref_path, cur_path = data_files(args.rows, args.seed)
    # Both sides run one after the other: other work on the machine can favour either.
    load_before = os.getloadavg()[0]

    note("Evidently DataDriftPreset in its own venv (takes minutes) ...")
    ev_run = run_child(
        [
            args.evidently_python,
            str(CHILD),
            str(ref_path),
            str(cur_path),
            "--numeric",
            ",".join(numeric),
            "--categorical",
            ",".join(categorical),
        ],
        trace_every=0.05,
    )
    ev = json.loads(ev_run.stdout.strip().splitlines()[-1])
    ev_seconds = ev["read_seconds"] + ev["dataset_seconds"] + ev["report_seconds"]
    ev_rss = max((rss for _, rss in ev_run.rss_trace), default=0)
    note(f"  {ev_seconds:.1f} s (child wall {ev_run.seconds:.1f} s)")

    note("assay, once in a child for its peak RSS ...")
    as_run = run_child(
        [
            sys.executable,
            "-c",
            ASSAY_CHILD,
            str(ref_path),
            str(cur_path),
            ",".join(numeric),
            ",".join(categorical),
        ],
        trace_every=0.02,
    )
    as_rss = max((rss for _, rss in as_run.rss_trace), default=0)

    runs = []
    for i in range(args.repeat):
        runs.append(assay_side(ref_path, cur_path, numeric, categorical))
        note(f"assay {i + 1}/{args.repeat}: {runs[-1]['seconds']:.2f} s")
    ordered = sorted(runs, key=lambda r: r["seconds"])
    mid = ordered[len(ordered) // 2]
    a_seconds = statistics.median(r["seconds"] for r in runs)
    speedup = ev_seconds / a_seconds
    t_ks = ks_seconds(mid["sketches"])
    # KLL sketches are randomised: a verdict near a threshold may differ between runs.
    changed = [
        c.name for c in cols if len({bool(r["columns"][c.name]["drifted"]) for r in runs}) > 1
    ]
    spread = {
        c.name: [
            r["columns"][c.name]["stats"][
                "wasserstein_normed" if c.kind == "numeric" else "js_distance"
            ]
            for r in runs
        ]
        for c in cols
    }
    # Among the columns no run flagged: how close chance brings them to a threshold.
    quiet = [c.name for c in cols if not any(r["columns"][c.name]["drifted"] for r in runs)]
    widest = max(quiet or spread, key=lambda k: max(spread[k]) - min(spread[k]))
    verdict = "met" if speedup >= GOAL_RATIO else "MISSED"

    print_block(
        "data",
        [
            ("tables", f"reference and current, {args.rows:,} rows each, seed {args.seed}"),
            ("columns", f"{len(numeric)} numeric, {len(categorical)} categorical"),
            ("files", f"{mib(ref_path.stat().st_size)} + {mib(cur_path.stat().st_size)} Parquet"),
            ("injected drift", ", ".join(c.name for c in cols if c.drift)),
        ],
    )
    print_block(
        "timings (imports excluded on both sides)",
        [
            (
                "assay",
                f"{a_seconds:.2f} s median of {args.repeat} (read {mid['read_seconds']:.2f} + "
                f"sketches and counts {mid['sketch_seconds']:.2f} + stats and verdicts "
                f"{mid['stats_seconds']:.2f}); peak RSS {mib(as_rss)} in a child",
            ),
            (
                "Evidently",
                f"{ev_seconds:.1f} s (read {ev['read_seconds']:.2f} + Dataset "
                f"{ev['dataset_seconds']:.2f} + Report.run {ev['report_seconds']:.1f}); "
                f"child wall {ev_run.seconds:.1f} s incl. imports {ev['import_seconds']:.1f} s; "
                f"peak RSS {mib(ev_rss)}",
            ),
            (
                "assay's stats stage",
                f"of which ks_sketch {t_ks:.2f} s (scipy kstwo.sf p-values); assay without "
                f"it (estimate): {a_seconds - t_ks:.2f} s, {ev_seconds / (a_seconds - t_ks):.1f}x",
            ),
            ("versions", f"evidently {ev['evidently']}, pandas {ev['pandas']} (Evidently venv)"),
            ("speedup", f"{speedup:.1f}x (goal >= {GOAL_RATIO:.0f}x: {verdict})"),
            ("profile_events", profile_events_note(ref_path)),
            (
                "load average",
                f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after (1 min; "
                f"{os.cpu_count()} CPUs): much above 0 means other work shared the machine",
            ),
        ],
    )

    print()
    print("== per-column verdicts ==")
    print()
    print(
        markdown_row(
            [
                "column",
                "kind",
                "injected change",
                "assay",
                "assay score",
                "assay rules",
                "Evidently",
                "Evidently method: score",
                "agree",
            ]
        )
    )
    print(markdown_row(["---"] * 9))
    agree = 0
    notes: list[str] = []
    truth_hits = {"assay": 0, "evidently": 0}
    for col in cols:
        a = mid["columns"][col.name]
        e = ev["columns"][col.name]
        s = a["stats"]
        same = bool(a["drifted"]) == bool(e["drifted"])
        agree += same
        truth_hits["assay"] += bool(a["drifted"]) == col.drift
        truth_hits["evidently"] += bool(e["drifted"]) == col.drift
        if not same:
            notes.append(explain(col.name, a, e))
        key = "wasserstein_normed" if col.kind == "numeric" else "js_distance"
        score = f"{'W' if col.kind == 'numeric' else 'JS'} {s[key]:.4f}, PSI {s['psi']:.4f}"
        if s["missing_delta"]:
            score += f", missing {s['missing_delta']:+.3f}"
        print(
            markdown_row(
                [
                    f"`{col.name}`",
                    col.kind,
                    col.change or "none",
                    "drift" if a["drifted"] else "-",
                    score,
                    ", ".join(reasons(s, col.kind)) or "-",
                    "drift" if e["drifted"] else "-",
                    f"{e['method']}: {e['score']:.4f}",
                    "yes" if same else "**no**",
                ]
            )
        )
    print()
    print_block(
        "agreement",
        [
            ("same verdict", f"{agree} / {len(cols)} columns"),
            ("assay = injected", f"{truth_hits['assay']} / {len(cols)}"),
            ("Evidently = injected", f"{truth_hits['evidently']} / {len(cols)}"),
            ("Evidently dataset drift", str(ev["dataset_drifted"])),
            (
                f"assay over {len(runs)} runs",
                ("verdicts identical" if not changed else f"verdicts CHANGED: {changed}")
                + f"; widest score range of an unflagged column: {widest} {min(spread[widest]):.4f}"
                f"..{max(spread[widest]):.4f} (KLL sketches are randomised)",
            ),
        ],
    )
    for line in notes:
        print(f"  - {line}")

    print()
    print("markdown row for RESULTS.md:")
    print(
        markdown_row(
            [
                f"{args.rows:,} rows x {len(cols)} columns",
                f"{a_seconds:.2f} s",
                f"{ev_seconds:.1f} s",
                f"**{speedup:.0f}x**",
                f"{agree} / {len(cols)}",
            ]
        )
    )


if __name__ == "__main__":
    main()
