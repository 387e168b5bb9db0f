"""`assay rag compare`: two releases' RAG signals side by side, against hand-worked counts,
statsmodels' two-proportion test and a numpy delta-method reference."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats import proportion as smp
from typer.testing import CliRunner

from assay import UsageError
from assay.cli import app
from assay.rag import Qrels, compare_releases
from assay.rag._compare import Release, ratio_test

# The suite imports test files by path (importlib mode): the signals tests' event helpers are
# loaded from beside this file.
sys.path.insert(0, str(Path(__file__).parent))
from test_signals import turn, workspace


def _sums(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float, float, int]:
    return (x.sum(), y.sum(), (x * x).sum(), (y * y).sum(), (x * y).sum(), len(x))


@settings(max_examples=50, deadline=None)
@given(
    n_a=st.integers(5, 300),
    n_b=st.integers(5, 300),
    p_a=st.floats(0.05, 0.95),
    p_b=st.floats(0.05, 0.95),
)
def test_ratio_test_of_a_share_is_the_wald_two_proportion_test(
    n_a: int, n_b: int, p_a: float, p_b: float
) -> None:
    k_a, k_b = round(n_a * p_a), round(n_b * p_b)
    a = _sums(np.r_[np.ones(k_a), np.zeros(n_a - k_a)], np.ones(n_a))
    b = _sums(np.r_[np.ones(k_b), np.zeros(n_b - k_b)], np.ones(n_b))
    r_a, r_b, diff, low, high, p = ratio_test(*a, *b)
    if k_a in (0, n_a) and k_b in (0, n_b):
        return  # no variance: statsmodels divides by zero
    ref = smp.test_proportions_2indep(k_b, n_b, k_a, n_a, method="wald", compare="diff")
    lo, hi = smp.confint_proportions_2indep(k_b, n_b, k_a, n_a, method="wald")
    assert (r_a, r_b) == pytest.approx((k_a / n_a, k_b / n_b))
    assert diff == pytest.approx(k_b / n_b - k_a / n_a)
    assert p == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-12)
    assert (low, high) == pytest.approx((lo, hi), rel=1e-9)


def test_ratio_test_of_a_doc_share_takes_its_variance_over_answers() -> None:
    # Per answer: uncited docs x of retrieved docs y. Reference: the linearised ratio
    # variance from numpy's population variances and covariance, var(x - R y) * n / Y^2.
    rng = np.random.default_rng(2)
    y_a = rng.integers(1, 6, 80).astype(float)
    x_a = rng.binomial(y_a.astype(int), 0.5).astype(float)
    y_b = rng.integers(1, 6, 60).astype(float)
    x_b = rng.binomial(y_b.astype(int), 0.7).astype(float)
    _, _, diff, low, high, p = ratio_test(*_sums(x_a, y_a), *_sums(x_b, y_b))

    def var(x: np.ndarray, y: np.ndarray) -> float:
        r = x.sum() / y.sum()
        cov = np.cov(x, y, ddof=0)
        return float((cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) * len(x) / y.sum() ** 2)

    se = np.sqrt(var(x_a, y_a) + var(x_b, y_b))
    assert diff == pytest.approx(x_b.sum() / y_b.sum() - x_a.sum() / y_a.sum())
    assert (low, high) == pytest.approx(
        (diff - 1.959963984540054 * se, diff + 1.959963984540054 * se)
    )
    from scipy.stats import norm

    assert p == pytest.approx(2 * norm.sf(abs(diff) / se))


def test_ratio_test_without_trials_gives_no_p_value() -> None:
    r_a, r_b, _, low, high, p = ratio_test(0, 0, 0, 0, 0, 0, 3, 4, 3, 4, 3, 4)
    assert np.isnan(r_a)
    assert r_b == 0.75
    assert np.isnan(low) and np.isnan(high) and np.isnan(p)  # noqa: PT018


EVENTS = [
    # Release A (rag-v2): 4 answers, 3 cite; retrieved 2 each.
    turn(1, ["a", "b"], ["a"], query="q1", prompt_template="rag-v2", locale="en"),
    turn(2, ["a", "c"], ["a", "c"], query="q1", prompt_template="rag-v2", locale="fr"),
    turn(3, ["b", "c"], [], query="q2", prompt_template="rag-v2", locale="fr"),
    turn(4, ["a", "b"], ["b"], query="q2", prompt_template="rag-v2", locale="en"),
    # Release B (rag-v3): 3 answers, 1 cites.
    turn(5, ["b", "d"], [], query="q1", prompt_template="rag-v3", locale="en"),
    turn(6, ["d", "b"], ["d"], query="q2", prompt_template="rag-v3", locale="fr"),
    turn(7, ["c", "d"], [], query="q1", prompt_template="rag-v3", locale="fr"),
    # Neither release; and a release-B turn without retrieval (not an answer).
    turn(8, ["a"], ["a"], query="q1", prompt_template="chat-v5"),
    turn(9, [], ["a"], query="q1", prompt_template="rag-v3"),
]
QRELS = Qrels({"q1": {"a": 1, "c": 1}, "q2": {"b": 2}})


def _row(rows: list[dict[str, Any]], slice_: str, signal: str) -> dict[str, Any]:
    (row,) = [r for r in rows if r["slice"] == slice_ and r["signal"] == signal]
    return row


def test_compare_releases_counts_each_release_and_slice(tmp_path: Path) -> None:
    with workspace(tmp_path, EVENTS) as ws:
        result = compare_releases(
            ws, "prompt_template=rag-v2", "prompt_template=rag-v3", qrels=QRELS, by="locale",
            n_boot=200,
        )  # fmt: skip
    cited = _row(result.signals, "(all)", "cited_rate")
    assert (cited["answers_a"], cited["num_a"], cited["answers_b"], cited["num_b"]) == (4, 3, 3, 1)
    assert cited["diff"] == pytest.approx(1 / 3 - 3 / 4)
    ref = smp.test_proportions_2indep(1, 3, 3, 4, method="wald", compare="diff")
    assert cited["p_value"] == pytest.approx(ref.pvalue)
    # Precision: A cites a (q1: rel), a, c (q1: both rel), b (q2: rel) -> 4 of 4;
    # B cites d (q2: not rel) -> 0 of 1.
    prec = _row(result.signals, "(all)", "citation_precision")
    assert (prec["num_a"], prec["den_a"], prec["num_b"], prec["den_b"]) == (4, 4, 0, 1)
    # Recall: A's relevant docs 2 + 2 + 1 + 1 = 6; B's 2 + 1 + 2 = 5.
    rec = _row(result.signals, "(all)", "citation_recall")
    assert (rec["num_a"], rec["den_a"], rec["num_b"], rec["den_b"]) == (4, 6, 0, 5)
    fr = _row(result.signals, "fr", "uncited_retrieved_share")
    # A in fr: e2 uncited 0 of 2, e3 2 of 2; B in fr: e6 1 of 2, e7 2 of 2.
    assert (fr["num_a"], fr["den_a"], fr["num_b"], fr["den_b"]) == (2, 4, 3, 4)
    assert not [r for r in result.signals if r["signal"] in ("groundedness", "grounded_rate")]
    assert any("judgements" in n for n in result.notes)
    # Retrieval on the queries both answered (q1, q2), each release's first answer.
    rr = [r for r in result.retrieval if r["slice"] == "(all)" and r["metric"] == "RR"]
    # A: q1 first answer e1 [a, b] -> RR 1; q2 e3 [b, c] -> 1. B: q1 e5 [b, d] -> 0;
    # q2 e6 [d, b] -> 1/2.
    assert rr[0]["n_queries"] == 2
    assert (rr[0]["mean_a"], rr[0]["mean_b"]) == pytest.approx((1.0, 0.25))


def test_compare_rejects_a_malformed_or_identical_release(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="FIELD=VALUE"):
        Release.parse("rag-v2", "a")
    with pytest.raises(UsageError, match="FIELD=VALUE"):
        Release.parse("colour=blue", "b")
    with workspace(tmp_path, EVENTS) as ws:
        with pytest.raises(UsageError, match="same release"):
            compare_releases(ws, "locale=en", "locale=en")
        with pytest.raises(UsageError, match="--by"):
            compare_releases(ws, "locale=en", "locale=fr", by="locale")


def test_cli_imports_qrels_and_compares(tmp_path: Path) -> None:
    with workspace(tmp_path, EVENTS):
        pass
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("q1 0 a 1\nq1 0 c 1\nq2 0 b 2\n", encoding="utf-8")
    runner = CliRunner()
    ws = str(tmp_path / "ws")
    done = runner.invoke(app, ["rag", "qrels", "import", str(qrels), "-w", ws])
    assert done.exit_code == 0, done.output
    assert "stored 3 judgements of 2 queries" in done.output
    out = runner.invoke(
        app,
        ["rag", "compare", "--a", "prompt_template=rag-v2", "--b", "prompt_template=rag-v3",
         "-w", ws, "-f", "json"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert (data["a"], data["b"], data["by"]) == (
        "prompt_template=rag-v2",
        "prompt_template=rag-v3",
        None,
    )
    prec = _row(data["signals"], "(all)", "citation_precision")
    assert (prec["rate_a"], prec["rate_b"]) == (1.0, 0.0)
    bad = runner.invoke(app, ["rag", "compare", "--a", "v2", "--b", "prompt_template=x", "-w", ws])
    assert bad.exit_code == 2
    assert "FIELD=VALUE" in bad.output
