"""The predictions file: a handoff model worse in the locale that truth.json names."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from assay.cli import app
from assay.synth import SynthConfig, SynthOutput, write

CONFIG = SynthConfig(tenants=5, users=40, days=3, seed=4, start=dt.date(2026, 1, 1))


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[SynthOutput, list[dict[str, str]]]:
    root = tmp_path_factory.mktemp("predictions")
    out = write(root / "data", CONFIG, predictions=root / "predictions.csv")
    assert out.predictions_path is not None
    with out.predictions_path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return out, rows


def _auc(pairs: list[tuple[int, float]]) -> float:
    """ROC AUC by counting pairs (ties count half): the Mann-Whitney statistic."""
    pos = [s for y, s in pairs if y == 1]
    neg = [s for y, s in pairs if y == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_the_file_has_the_documented_columns_and_rows(
    written: tuple[SynthOutput, list[dict[str, str]]],
) -> None:
    out, rows = written
    info: dict[str, Any] = out.truth["predictions"]
    assert len(rows) == info["rows"] == 3000
    assert list(rows[0]) == ["example_id", "tenant_id", "locale", "platform", "y_true", "y_score"]
    assert {r["y_true"] for r in rows} == {"0", "1"}
    assert all(0.0 < float(r["y_score"]) < 1.0 for r in rows)
    tenants = {t["tenant_id"] for t in out.truth["tenants"]}
    assert {r["tenant_id"] for r in rows} <= tenants
    assert {r["locale"] for r in rows} <= set(out.truth["dimensions"]["locales"])
    positives = sum(r["y_true"] == "1" for r in rows) / len(rows)
    assert positives == pytest.approx(info["positive_rate"], abs=0.03)
    # Outside the events folder: `assay ingest DATA` must not read it as events.
    assert out.predictions_path is not None
    assert out.predictions_path.parent != out.truth_path.parent


def test_the_model_is_worse_in_the_locale_truth_names(
    written: tuple[SynthOutput, list[dict[str, str]]],
) -> None:
    out, rows = written
    info = out.truth["predictions"]
    (worse,) = info["worse_slice"].values()
    by_locale: dict[str, list[tuple[int, float]]] = {}
    for r in rows:
        by_locale.setdefault(r["locale"], []).append((int(r["y_true"]), float(r["y_score"])))
    aucs = {loc: _auc(pairs) for loc, pairs in by_locale.items() if len(pairs) >= 100}
    assert aucs[worse] == pytest.approx(info["expected_roc_auc_worse_slice"], abs=0.06)
    for loc, auc in aucs.items():
        if loc != worse:
            assert auc == pytest.approx(info["expected_roc_auc"], abs=0.05)
            assert auc > aucs[worse] + 0.1


def test_the_predictions_are_deterministic(tmp_path: Path) -> None:
    a = write(tmp_path / "a", CONFIG, predictions=tmp_path / "a.csv")
    b = write(tmp_path / "b", CONFIG, predictions=tmp_path / "b.csv")
    assert a.predictions_path is not None
    assert b.predictions_path is not None
    assert a.predictions_path.read_bytes() == b.predictions_path.read_bytes()


def test_no_predictions_file_unless_asked(tmp_path: Path) -> None:
    out = write(tmp_path, CONFIG)
    assert out.predictions_path is None
    assert not list(tmp_path.glob("*.csv"))
    assert "predictions" in out.truth  # the model is described either way


def test_evaluate_flags_the_worse_locale(
    written: tuple[SynthOutput, list[dict[str, str]]],
) -> None:
    out, _ = written
    (worse,) = out.truth["predictions"]["worse_slice"].values()
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            str(out.predictions_path),
            "--label",
            "y_true",
            "--score",
            "y_score",
            "--slice",
            "locale",
            "--no-pairs",
            "--format",
            "csv",
        ],
    )
    assert result.exit_code == 1, result.output  # 1: a slice was flagged
    flagged = {
        (r["feature"], r["value"])
        for r in csv.DictReader(result.stdout.splitlines())
        if r["flagged"] == "true"
    }
    assert flagged == {("locale", worse)}
