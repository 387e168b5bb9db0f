"""`assay rag eval` through typer's runner (and once as a subprocess): the worked example of
docs/rag.md, a paired comparison, slices, per-query output and user errors (exit 2, no
traceback)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assay.cli import app

pytest.importorskip("ir_measures")

runner = CliRunner()

QRELS = "q1 0 d1 2\nq1 0 d2 0\nq1 0 d3 1\nq1 0 d4 1\nq2 0 d7 1\n"
RUN_A = "".join(
    f"q1 Q0 {d} {i} {s} bm25\n"
    for i, (d, s) in enumerate([("d5", 3.0), ("d1", 2.5), ("d2", 2.0), ("d3", 2.0), ("d6", 1.0)])
)
RUN_B = "q1 Q0 d1 1 3.0 dense\nq1 Q0 d3 2 2.5 dense\nq2 Q0 d7 1 1.0 dense\n"
NDCG3_Q1 = (2 / math.log2(3) + 1 / 2) / (2 + 1 / math.log2(3) + 1 / 2)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    paths = {}
    for name, text in {"qrels": QRELS, "a": RUN_A, "b": RUN_B}.items():
        path = tmp_path / f"{name}.txt"
        path.write_text(text)
        paths[name] = str(path)
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"query_id": "q1", "locale": "de"}\n{"query_id": "q2", "locale": "fr"}\n')
    paths["queries"] = str(queries)
    return paths


def _json(args: list[str]) -> dict[str, object]:
    result = runner.invoke(app, ["rag", "eval", *args, "-f", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_eval_reports_the_worked_example_of_the_docs(files: dict[str, str]) -> None:
    out = _json(["--qrels", files["qrels"], "--run", files["a"], "--metrics", "nDCG@3,AP,MRR"])
    assert out["run"] == "bm25"
    means = {r["metric"]: r["mean"] for r in out["summary"]}  # type: ignore[attr-defined]
    # q2 is unanswered and counts 0: each mean is half of q1's value.
    assert means == pytest.approx(
        {"nDCG@3": NDCG3_Q1 / 2, "AP": (1 / 2 + 2 / 3) / 3 / 2, "RR": 1 / 4}
    )
    assert out["per_query"] == [
        {
            "query_id": "q1",
            "nDCG@3": pytest.approx(NDCG3_Q1),
            "AP": pytest.approx(7 / 18),
            "RR": 0.5,
        },
        {"query_id": "q2", "nDCG@3": 0.0, "AP": 0.0, "RR": 0.0},
    ]


def test_eval_with_skip_leaves_unanswered_queries_out(files: dict[str, str]) -> None:
    out = _json(
        ["--qrels", files["qrels"], "--run", files["a"], "--metrics", "RR", "--missing", "skip"]
    )
    assert out["summary"] == [
        {
            "by": None,
            "slice": None,
            "metric": "RR",
            "n_queries": 1,
            "mean": 0.5,
            "ci_low": 0.5,
            "ci_high": 0.5,
        }
    ]


def test_eval_compares_two_runs_per_slice(files: dict[str, str]) -> None:
    args = ["--qrels", files["qrels"], "--run", files["a"], "--run-b", files["b"]]
    out = _json([*args, "--metrics", "AP", "--by", "locale", "--queries", files["queries"]])
    assert (out["run_a"], out["run_b"]) == ("bm25", "dense")
    rows = {r["slice"]: r for r in out["summary"]}  # type: ignore[attr-defined]
    # B ranks q1's relevant d1, d3 first (AP (1 + 1) / 3) and answers q2 (AP 1).
    assert rows["de"]["diff"] == pytest.approx(2 / 3 - 7 / 18)
    assert rows["fr"]["diff"] == pytest.approx(1.0)
    assert rows[None]["n_queries"] == 2
    assert rows[None]["p_value"] == pytest.approx(0.5)  # 2 queries, both better: 2 * 1/4
    d = [2 / 3 - 7 / 18, 1.0]
    mean, sd = sum(d) / 2, math.sqrt(sum((x - sum(d) / 2) ** 2 for x in d))
    assert rows[None]["effect_size"] == pytest.approx(mean / sd)


def test_eval_table_shows_slices_and_the_per_query_table_shows_run_names(
    files: dict[str, str],
) -> None:
    args = ["rag", "eval", "--qrels", files["qrels"], "--run", files["a"], "--metrics", "RR"]
    result = runner.invoke(app, [*args, "--by", "locale", "--queries", files["queries"]])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "bm25: 2 queries; 95% bootstrap intervals; unanswered queries count 0"
    assert [line.split()[0] for line in lines[2:]] == ["(all)", "locale=de", "locale=fr"]
    per = runner.invoke(app, [*args, "--per-query"])
    assert [line.split() for line in per.stdout.splitlines()[1:]] == [
        ["bm25", "q1", "0.5"],
        ["bm25", "q2", "0"],
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--metrics", "F1"], "unknown retrieval metric 'F1'"),
        (["--by", "locale"], "no query has the field 'locale'"),
        (["--run-b", "missing.txt"], "no file"),
    ],
)
def test_eval_user_errors_exit_2_with_the_fix(
    files: dict[str, str], extra: list[str], message: str
) -> None:
    result = runner.invoke(
        app, ["rag", "eval", "--qrels", files["qrels"], "--run", files["a"], *extra]
    )
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_eval_names_the_bad_line_of_a_qrels_file(tmp_path: Path, files: dict[str, str]) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("q1 0 d1 1\nq1 d2 1\n")
    result = runner.invoke(app, ["rag", "eval", "--qrels", str(bad), "--run", files["a"]])
    assert result.exit_code == 2
    assert "bad.txt:2: expected 4 whitespace-separated columns" in result.stderr


def test_eval_as_a_subprocess(files: dict[str, str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[3] / "src")}
    command = [sys.executable, "-c", "from assay.cli import main; main()"]
    done = subprocess.run(
        [*command, "rag", "eval", "--qrels", files["qrels"], "--run", files["a"], "-f", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    means = {r["metric"]: r["mean"] for r in json.loads(done.stdout)["summary"]}
    assert means["Rprec"] == pytest.approx(1 / 3)
    assert means["P@10"] == pytest.approx(2 / 10 / 2)
