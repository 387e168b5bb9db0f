"""Every metric on the fixed edge-case data, read from Delta by DuckDB, against the reference."""

from __future__ import annotations

from typing import Any

import metrics_reference as reference
import pytest
from metrics_data import assert_same_rows, day

from assay import NotFoundError
from assay.metrics import Metrics

METRIC_NAMES = list(reference.REFERENCES)

OPTIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "one-tenant": {"tenant": "beta"},
    "since-until": {"since": day("2026-01-08"), "until": day("2026-01-18")},
    "since-only": {"since": day("2026-01-13")},
    "until-before-beta": {"until": day("2026-01-09")},
    "since-after-all-activity": {"since": day("2026-01-21")},
    "by-flight": {"by": "flight"},
    "by-locale-with-nulls": {"by": "locale"},
    "by-platform-since": {"by": "platform", "since": day("2026-01-11")},
    "by-model-version": {"by": "model_version"},
}

WINDOWED: dict[str, list[dict[str, Any]]] = {
    "active_users": [{"window": 1}, {"window": 3}, {"window": 30}],
    "dau_rolling": [
        {"window": 1, "threshold": 0.0},
        {"window": 2, "threshold": 0.5},
        {"window": 3, "threshold": 0.3},
        {"window": 10, "threshold": 0.9},
    ],
    "max_active": [{"window": 1}, {"window": 3}, {"window": 7}, {"window": 21}],
}


@pytest.mark.parametrize("options", OPTIONS.values(), ids=list(OPTIONS))
@pytest.mark.parametrize("metric", METRIC_NAMES)
def test_metric_matches_reference_on_edge_cases(
    edge_metrics: Metrics,
    edge_rows: list[dict[str, Any]],
    metric: str,
    options: dict[str, Any],
) -> None:
    got = getattr(edge_metrics, metric)(**options).to_pylist()
    expected = reference.REFERENCES[metric](edge_rows, **options)
    assert_same_rows(got, expected)


@pytest.mark.parametrize("metric", METRIC_NAMES)
def test_a_tenant_without_events_is_not_found_not_an_empty_table(
    edge_metrics: Metrics, edge_rows: list[dict[str, Any]], metric: str
) -> None:
    assert "nobody" not in {r["tenant_id"] for r in edge_rows}
    with pytest.raises(NotFoundError, match="no tenant 'nobody'"):
        getattr(edge_metrics, metric)(tenant="nobody")


@pytest.mark.parametrize(
    ("metric", "options"),
    [(metric, options) for metric, cases in WINDOWED.items() for options in cases],
    ids=lambda value: str(value),
)
@pytest.mark.parametrize("by", [None, "flight"])
def test_windowed_metric_matches_reference_for_non_default_windows(
    edge_metrics: Metrics,
    edge_rows: list[dict[str, Any]],
    metric: str,
    options: dict[str, Any],
    by: str | None,
) -> None:
    got = getattr(edge_metrics, metric)(**options, by=by).to_pylist()
    expected = reference.REFERENCES[metric](edge_rows, **options, by=by)
    assert_same_rows(got, expected)


def test_edge_cases_cover_what_they_claim(edge_metrics: Metrics) -> None:
    # Guards the fixture itself: if the data lost its edge cases the tests above would pass
    # without proving anything.
    dau = edge_metrics.dau().to_pylist()
    tenants = {row["tenant_id"] for row in dau}
    assert tenants == {"acme", "beta"}  # gamma has no turn
    assert any(row["dau"] == 0 for row in dau)  # a day without activity inside the grid
    assert min(row["day"] for row in dau if row["tenant_id"] == "beta") == day("2026-01-10")
    assert max(row["day"] for row in dau) == day("2026-01-22")  # gamma's last event
    flights = {row["flight"] for row in edge_metrics.dau(by="flight").to_pylist()}
    assert flights == {"f-a", "f-b", "f-c"}
