"""The public surface of assay.metrics: exports, argument checks, output schemas."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest
from metrics_data import MetricsFactory, event

import assay.metrics
from assay import NotFoundError, UsageError
from assay.metrics import SLICE_FIELDS, Metrics, output_schema

ROWS = [event("2026-01-01", user="a", locale="en", flights=["x"])]


def test_all_lists_exactly_the_importable_public_names() -> None:
    public = {name for name in dir(assay.metrics) if not name.startswith("_")}
    assert set(assay.metrics.__all__) == public
    for name in assay.metrics.__all__:
        assert getattr(assay.metrics, name) is not None


def test_slice_fields_are_the_documented_six() -> None:
    assert SLICE_FIELDS == (
        "locale",
        "platform",
        "app_version",
        "model_version",
        "prompt_template",
        "flight",
    )


EXPECTED_COLUMNS = {
    "dau": ["tenant_id", "day", "dau"],
    "active_users": ["tenant_id", "day", "window", "active_users"],
    "dau_rolling": ["tenant_id", "day", "dau", "dau_avg", "dau_prev_avg", "drop"],
    "max_active": ["tenant_id", "window", "max_active", "window_start"],
    "retention": ["tenant_id", "cohort_week", "week", "users", "retained", "rate"],
    "sessions": [
        "tenant_id",
        "day",
        "sessions",
        "turns",
        "turns_per_session",
        "handoff_rate",
        "thumbs_down_rate",
        "error_rate",
        "latency_p50",
        "latency_p95",
        "latency_p99",
        "tokens_in",
        "tokens_out",
        "cost_usd",
    ],
}


@pytest.mark.parametrize("by", [None, "locale", "flight"])
@pytest.mark.parametrize("metric", list(EXPECTED_COLUMNS))
def test_each_metric_returns_exactly_its_columns_with_the_slice_after_tenant(
    stored_metrics: MetricsFactory, metric: str, by: str | None
) -> None:
    out = getattr(stored_metrics(ROWS), metric)(by=by)
    expected = list(EXPECTED_COLUMNS[metric])
    if by is not None:
        expected.insert(1, by)
    assert out.column_names == expected
    assert out.schema == output_schema(metric, by)
    assert out.num_rows >= 1
    for name in ("day", "cohort_week", "window_start"):
        if name in expected:
            assert out.schema.field(name).type == pa.date32()


@pytest.mark.parametrize(
    ("method", "kwargs", "fragment"),
    [
        ("active_users", {"window": 0}, "window must be a whole number of days >= 1"),
        ("active_users", {"window": 2.5}, "window must be"),
        ("max_active", {"window": True}, "window must be"),
        ("dau_rolling", {"threshold": 1.0}, "threshold must be a fraction in [0, 1)"),
        ("dau_rolling", {"threshold": -0.1}, "threshold must be"),
        ("dau", {"by": "user_id"}, "by must be one of locale, platform"),
        ("dau", {"since": dt.date(2026, 2, 1), "until": dt.date(2026, 1, 1)}, "since must not"),
        ("dau", {"since": "2026-01-01"}, "since must be a datetime.date"),
        ("dau", {"until": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}, "until must be a datetime.date"),
        ("sessions", {"tenant": ""}, "tenant must be a non-empty"),
        ("dau", {"until": dt.date(9072, 11, 13)}, "day grid must span at most 3,660 days"),
        ("health", {"since": dt.date(2000, 1, 1), "until": dt.date(2026, 1, 1)}, "day grid"),
    ],
)
def test_bad_arguments_raise_usage_error_saying_what_to_do(
    stored_metrics: MetricsFactory, method: str, kwargs: dict[str, Any], fragment: str
) -> None:
    metrics = stored_metrics(ROWS)
    with pytest.raises(UsageError) as caught:
        getattr(metrics, method)(**kwargs)
    assert fragment in str(caught.value)
    assert "(got" in str(caught.value)


def test_unknown_active_event_types_are_rejected() -> None:
    with pytest.raises(UsageError, match="active_event_types"):
        Metrics(lambda: None, active_event_types=("click",))
    with pytest.raises(UsageError, match="active_event_types"):
        Metrics(lambda: None, active_event_types=())


def test_since_after_the_last_event_day_gives_an_empty_table(
    stored_metrics: MetricsFactory,
) -> None:
    out = stored_metrics(ROWS).dau(since=dt.date(2027, 1, 1))
    assert out.num_rows == 0
    assert out.column_names == ["tenant_id", "day", "dau"]


def test_until_after_the_last_event_day_extends_the_grid_with_zeros(
    stored_metrics: MetricsFactory,
) -> None:
    out = stored_metrics(ROWS).dau(until=dt.date(2026, 1, 3))
    assert out.column("dau").to_pylist() == [1, 0, 0]


TENANTS = [
    event("2026-01-01", tenant="tenant-001", user="a"),
    event("2026-01-01", tenant="tenant-002", user="a"),
    event("2026-01-01", tenant="quiet", user="a", type="session_start"),
]


@pytest.mark.parametrize(
    "method",
    ["dau", "active_users", "dau_rolling", "max_active", "retention", "sessions", "health"],
)
def test_an_unknown_tenant_is_not_found_with_the_closest_ones_suggested(
    stored_metrics: MetricsFactory, method: str
) -> None:
    with pytest.raises(NotFoundError) as caught:
        getattr(stored_metrics(TENANTS), method)(tenant="tenant-01")
    text = str(caught.value)
    assert "no tenant 'tenant-01'" in text
    assert "did you mean tenant-001 or tenant-002?" in text
    assert "assay tenants" in text


def test_a_known_tenant_without_active_days_is_an_empty_table_not_an_error(
    stored_metrics: MetricsFactory,
) -> None:
    metrics = stored_metrics(TENANTS)
    assert metrics.dau(tenant="quiet").num_rows == 0
    # A known tenant outside the days asked for is empty too.
    assert metrics.dau(tenant="tenant-001", since=dt.date(2026, 1, 2)).num_rows == 0


def test_an_unknown_tenant_of_an_empty_workspace_says_to_ingest_first(
    stored_metrics: MetricsFactory,
) -> None:
    with pytest.raises(NotFoundError, match="no events yet"):
        stored_metrics([]).dau(tenant="acme")
