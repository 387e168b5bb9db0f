"""`assay rag judge` and `assay rag audit sample|import` through typer's runner, the OpenAI
judge configured by environment against the stand-in server, and once as a subprocess."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

from standin import PROMPT_TOKENS, running

from assay.cli import app
from assay.store import Workspace

runner = CliRunner()
CONTEXT = "Paris is the capital of France. The Seine runs through Paris."


def write_input(path: Path) -> Path:
    rows = [
        {
            "answer": "Paris is the capital of France.",
            "contexts": [CONTEXT],
            "tenant_id": "acme",
            "event_id": "e1",
        },
        {
            "answer": "Berlin has many bridges. The Seine runs through Paris.",
            "contexts": [CONTEXT],
            "tenant_id": "acme",
            "event_id": "e2",
        },
        {
            "answer": "Mail bob@example.com. Lyon is big.",
            "contexts": [CONTEXT],
            "tenant_id": "beta",
            "event_id": "e3",
        },
        {
            "answer": "A MALFORMED reply.",
            "contexts": [CONTEXT],
            "tenant_id": "beta",
            "event_id": "e4",
        },
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def new_workspace(tmp_path: Path) -> str:
    Workspace.init(tmp_path / "ws").close()
    return str(tmp_path / "ws")


def invoke(args: list[str], env: dict[str, str] | None = None) -> dict[str, object]:
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_judge_lexical_by_default_then_audit_round_trip(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path)
    data = write_input(tmp_path / "answers.jsonl")
    out = invoke(["rag", "judge", "--input", str(data), "-w", ws, "-f", "json"])
    summary = out["summary"]
    assert isinstance(summary, dict)
    # Lexical: e1 1/1, e2 1/2 (Berlin...), e3 0/2, e4 0/1 ("malformed reply" not in context).
    assert summary["judge"] == "lexical"
    assert summary["judged"] == 4
    assert summary["mean_score"] == pytest.approx((1 + 0.5 + 0 + 0) / 4)
    assert out["agreement"] == []

    sample = tmp_path / "audit.csv"
    result = runner.invoke(
        app,
        [
            "rag",
            "audit",
            "sample",
            "--n",
            "4",
            "--out",
            str(sample),
            "--input",
            str(data),
            "-w",
            ws,
        ],
    )
    assert result.exit_code == 0, result.output
    with sample.open() as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["event_id"] for r in rows) == ["e1", "e2", "e3", "e4"]
    assert all(r["human_label"] == "" for r in rows)
    assert all(r["release"] == "unknown" for r in rows)  # no events stored
    by_id = {r["event_id"]: r for r in rows}
    assert "<EMAIL>" in by_id["e3"]["answer"]  # judged and exported texts are redacted
    assert "bob@example.com" not in sample.read_text()

    people = {"e1": "grounded", "e2": "not_grounded", "e3": "not_grounded", "e4": "grounded"}
    for r in rows:
        r["human_label"] = people[r["event_id"]]
    with sample.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    table = invoke(["rag", "audit", "import", str(sample), "-w", ws, "-f", "json"])
    # Judge (all claims supported = grounded): e1 g, e2 ng, e3 ng, e4 ng; people g, ng, ng, g.
    # p_o = 3/4, p_e = (1/4)(2/4) + (3/4)(2/4) = 1/2, kappa = 1/2.
    assert isinstance(table, list)
    (row,) = table
    assert (row["judge"], row["n"]) == ("lexical", 4)
    assert row["kappa"] == pytest.approx(0.5)
    assert row["precision_not_grounded"] == pytest.approx(2 / 3)
    assert row["recall_not_grounded"] == 1.0


def test_judge_openai_from_the_environment_against_the_standin(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path)
    data = write_input(tmp_path / "answers.jsonl")
    with running() as server:
        env = {
            "ASSAY_JUDGE_URL": server.url,
            "ASSAY_JUDGE_MODEL": "m",
            "ASSAY_JUDGE_API_KEY": "sk-cli-secret",
            "ASSAY_JUDGE_PRICE_PER_THOUSAND_TOKENS": "0.01",
        }
        args = ["rag", "judge", "--input", str(data), "-w", ws, "-f", "json", "--retries", "0"]
        first = invoke(args, env)["summary"]
        second = invoke(args, env)["summary"]
        requests = server.requests
    assert isinstance(first, dict)
    assert isinstance(second, dict)
    assert first["judge"] == "openai"
    assert (first["judged"], first["errors_by_kind"]) == (3, {"unparsable": 1})
    # The stand-in: e1 1/1; e2 "the seine runs through paris" found, Berlin not: 1/2; e3 0/2.
    assert first["mean_score"] == pytest.approx(0.5)
    assert first["cost_usd"] == pytest.approx(4 * 120 / 1000 * 0.01)
    assert first["tokens_in"] == 4 * PROMPT_TOKENS
    assert (second["cache_hits"], second["tokens_in"]) == (3, PROMPT_TOKENS)
    assert requests == 4 + 1
    stored = b"".join(p.read_bytes() for p in Path(ws).rglob("*") if p.is_file())
    assert b"sk-cli-secret" not in stored


def test_user_errors_exit_2_without_a_traceback(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"answer": "x", "contexts": "not a list"}\n')
    result = runner.invoke(app, ["rag", "judge", "--input", str(bad), "-w", ws])
    assert result.exit_code == 2
    assert "line 1 of bad.jsonl: expected answer (a string) and contexts" in result.stderr
    result = runner.invoke(app, ["rag", "judge", "--input", str(bad), "--judge", "nli", "-w", ws])
    assert result.exit_code == 2
    result = runner.invoke(app, ["rag", "audit", "sample", "--n", "3", "-w", ws])
    assert result.exit_code == 2
    assert "run `assay rag judge --input FILE` first" in result.stderr
    assert "Traceback" not in result.output


def test_judge_as_a_subprocess(tmp_path: Path) -> None:
    data = write_input(tmp_path / "answers.jsonl")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[3] / "src")}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from assay.cli import main; main()",
            "rag",
            "judge",
            "--input",
            str(data),
            "-w",
            new_workspace(tmp_path),
            "--tenant",
            "acme",
            "--limit",
            "1",
            "-f",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)["summary"]
    assert (summary["answers"], summary["mean_score"]) == (1, 1.0)


def test_judge_nli_from_a_model_directory(tmp_path: Path) -> None:
    from test_nli_judge import write_model

    ws = new_workspace(tmp_path)
    data = tmp_path / "answers.jsonl"
    rows = [
        {"answer": "Yes indeed. No no.", "contexts": ["paris yes"], "event_id": "a"},
        {"answer": "Yes.", "contexts": ["yes"], "event_id": "b"},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    model = write_model(tmp_path / "nli")
    out = invoke(
        ["rag", "judge", "--input", str(data), "--nli-dir", str(model), "-w", ws, "-f", "json"]
    )
    summary = out["summary"]
    assert isinstance(summary, dict)
    # The tiny model (test_nli_judge.py): "Yes indeed." entailed (p 0.995), "No no." not
    # (p 0.002); "Yes." given "yes": logits [0, 0, 6], entailed.
    assert (summary["judge"], summary["judged"]) == ("nli", 2)
    assert summary["mean_score"] == pytest.approx((0.5 + 1.0) / 2)
