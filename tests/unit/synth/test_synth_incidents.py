"""Each incident recorded in truth.json is visible in the generated events, computed by hand."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from typing import Any


def _incident(truth: dict[str, Any], kind: str) -> dict[str, Any]:
    (found,) = [i for i in truth["incidents"] if i["kind"] == kind]
    assert isinstance(found, dict)
    return found


def _percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks, written out (numpy's default method)."""
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return float(s[lo] + (s[hi] - s[lo]) * (pos - lo))


def test_truth_lists_the_three_incidents_with_iso_dates(small_truth: dict[str, Any]) -> None:
    kinds = [i["kind"] for i in small_truth["incidents"]]
    assert kinds == ["outage", "handoff_jump", "latency_regression"]
    for incident in small_truth["incidents"]:
        start = dt.date.fromisoformat(incident["start"])
        end = dt.date.fromisoformat(incident["end"])
        assert dt.date(2026, 1, 1) <= start <= end <= dt.date(2026, 1, 28)
        assert isinstance(incident["expected"], str)
    outage = _incident(small_truth, "outage")
    days = (dt.date.fromisoformat(outage["end"]) - dt.date.fromisoformat(outage["start"])).days
    assert 3 <= days + 1 <= 5


def test_outage_tenant_dau_drops_by_at_least_60_percent(
    small_rows: list[dict[str, Any]],
    small_truth: dict[str, Any],
    instant: Callable[[object], dt.datetime],
) -> None:
    outage = _incident(small_truth, "outage")
    tenant = outage["tenant_id"]
    sizes = sorted(t["users"] for t in small_truth["tenants"])
    mine = next(t["users"] for t in small_truth["tenants"] if t["tenant_id"] == tenant)
    assert sizes[0] <= mine < sizes[-1], "the outage hits a mid-size tenant, not the largest"
    dau: dict[dt.date, set[str]] = defaultdict(set)
    for row in small_rows:
        if row["tenant_id"] == tenant and row["event_type"] == "turn":
            dau[instant(row["event_time"]).date()].add(row["user_id"])
    start = dt.date.fromisoformat(outage["start"])
    end = dt.date.fromisoformat(outage["end"])
    before = [len(dau[start - dt.timedelta(days=k)]) for k in range(1, 8)]
    baseline = sum(before) / 7
    assert baseline >= 10
    day = start
    while day <= end:
        assert len(dau[day]) <= 0.4 * baseline, (day, len(dau[day]), baseline)
        day += dt.timedelta(days=1)
    after = [len(dau[end + dt.timedelta(days=k)]) for k in range(1, 8)]
    assert sum(after) / 7 >= 0.6 * baseline, "activity comes back after the outage"


def test_outage_tenant_errors_spike_during_the_outage(
    small_rows: list[dict[str, Any]],
    small_truth: dict[str, Any],
    instant: Callable[[object], dt.datetime],
) -> None:
    outage = _incident(small_truth, "outage")
    start, end = dt.date.fromisoformat(outage["start"]), dt.date.fromisoformat(outage["end"])
    counts = {True: [0, 0], False: [0, 0]}  # during? -> [errors, turns]
    for row in small_rows:
        if row["tenant_id"] != outage["tenant_id"]:
            continue
        during = start <= instant(row["event_time"]).date() <= end
        if row["event_type"] == "error":
            counts[during][0] += 1
        elif row["event_type"] == "turn":
            counts[during][1] += 1
    assert counts[True][0] / counts[True][1] > 0.15
    assert counts[False][0] / counts[False][1] < 0.05


def test_handoff_rate_jumps_only_in_the_rolled_out_slice(
    small_rows: list[dict[str, Any]],
    small_truth: dict[str, Any],
    instant: Callable[[object], dt.datetime],
) -> None:
    jump = _incident(small_truth, "handoff_jump")
    start = dt.date.fromisoformat(jump["start"])
    sessions: dict[tuple[str, str], dict[str, Any]] = {}
    for row in sorted(small_rows, key=lambda r: instant(r["event_time"])):
        key = (row["tenant_id"], row["session_id"])
        s = sessions.setdefault(
            key, {"row": row, "day": instant(row["event_time"]).date(), "handoff": False}
        )
        if row["event_type"] == "handoff" or row.get("handoff") is True:
            s["handoff"] = True

    def rate(keep: Any) -> float:
        chosen = [bool(s["handoff"]) for s in sessions.values() if keep(s["row"], s["day"])]
        assert len(chosen) >= 100
        return sum(chosen) / len(chosen)

    def in_slice(row: dict[str, Any]) -> bool:
        return bool(row["tenant_id"] == jump["tenant_id"] and row["locale"] == jump["locale"])

    versions = {
        (in_slice(s["row"]), s["day"] >= start, s["row"]["model_version"])
        for s in sessions.values()
    }
    assert versions == {
        (False, False, "v2.0"),
        (False, True, "v2.0"),
        (True, False, "v2.0"),
        (True, True, "v2.1"),
    }
    slice_before = rate(lambda r, d: in_slice(r) and d < start)
    slice_after = rate(lambda r, d: in_slice(r) and d >= start)
    rest_before = rate(lambda r, d: not in_slice(r) and d < start)
    rest_after = rate(lambda r, d: not in_slice(r) and d >= start)
    assert slice_after >= 2.5 * slice_before
    assert 0.1 <= slice_after <= 0.2
    assert 0.02 <= rest_before <= 0.06
    assert 0.02 <= rest_after <= 0.06


def test_latency_of_the_regressed_template_doubles_from_its_start(
    small_rows: list[dict[str, Any]],
    small_truth: dict[str, Any],
    instant: Callable[[object], dt.datetime],
) -> None:
    reg = _incident(small_truth, "latency_regression")
    start = dt.date.fromisoformat(reg["start"])
    latencies: dict[tuple[bool, bool], list[float]] = defaultdict(list)
    for row in small_rows:
        if row["event_type"] == "turn":
            key = (
                row["prompt_template"] == reg["prompt_template"],
                instant(row["event_time"]).date() >= start,
            )
            latencies[key].append(row["latency_ms"])
    hit = _percentile(latencies[(True, True)], 0.95) / _percentile(latencies[(True, False)], 0.95)
    rest = _percentile(latencies[(False, True)], 0.95) / _percentile(
        latencies[(False, False)], 0.95
    )
    assert 1.7 <= hit <= 2.3
    assert 0.85 <= rest <= 1.15
    before = _percentile(latencies[(True, False)], 0.95)
    assert abs(before - reg["baseline_p95_ms"]) / reg["baseline_p95_ms"] < 0.1
