"""Root cause of a tenant's workspace metric (``explain_metric``), release events, and
``assay explain --metric M --tenant T --day D`` through typer's runner.

The workspaces are built by ingesting generated JSON Lines: hand-made tenants whose answer is
known (one per scenario, in one workspace shared by the module), then synthetic telemetry with
injected incidents. Before/after values are checked against ``ws.metrics`` or plain Python.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import typing
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import assay
from assay._errors import NotFoundError, UsageError
from assay.anomaly import (
    EXPLAIN_METRICS,
    MetricExplanation,
    explain_metric,
    release_events,
)
from assay.cli import app as assay_app
from assay.cli import explain as explain_cli
from assay.ingest import ingest_paths
from assay.synth import SynthConfig
from assay.synth import write as synth_write

D = dt.date(2026, 1, 8)
runner = CliRunner()


def _day(offset: int) -> dt.date:
    return D + dt.timedelta(days=offset)


class _Events:
    """Builds events of schema v1 in input form, with unique ids."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(
        self,
        tenant: str,
        day: dt.date,
        user: str,
        session: str,
        event_type: str = "turn",
        *,
        at: str = "12:00:00",
        **fields: Any,
    ) -> None:
        self.rows.append(
            {
                "event_id": f"e{len(self.rows)}",
                "event_time": f"{day.isoformat()}T{at}Z",
                "tenant_id": tenant,
                "user_id": user,
                "session_id": session,
                "event_type": event_type,
                **fields,
            }
        )


def _ingest(rows: list[dict[str, Any]], folder: Path) -> Path:
    src = folder / "events.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    root = folder / "ws"
    with assay.Workspace.open(root, create=True) as ws:
        summary = ingest_paths(ws, [src])
        assert summary.total("rejected") == 0, summary.as_dict()
    return root


def _hand_made() -> list[dict[str, Any]]:
    ev = _Events()
    days = [_day(-i) for i in range(7, -1, -1)]  # D-7 .. D

    # hand: 10 sessions per (locale, platform) and day, one handed off; on D six in fr.
    for day in days:
        for locale in ("en", "fr"):
            for platform in ("ios", "web"):
                handoffs = 6 if (day == D and locale == "fr") else 1
                for i in range(10):
                    s = f"{day}-{locale}-{platform}-{i}"
                    dims = {"locale": locale, "platform": platform}
                    ev.add("hand", day, f"u{s}", s, "session_start", at="10:00:00", **dims)
                    ev.add("hand", day, f"u{s}", s, "turn", at="10:01:00", **dims)
                    if i < handoffs:
                        ev.add("hand", day, f"u{s}", s, "handoff", at="10:02:00", **dims)

    # dau: 10 users per (locale, platform) and day; on D only 2 on ios.
    for day in days:
        for locale in ("en", "de"):
            for platform in ("ios", "web"):
                n = 2 if (day == D and platform == "ios") else 10
                for i in range(n):
                    user = f"{locale}-{platform}-{i}"
                    ev.add("dau", day, user, f"{day}-{user}", locale=locale, platform=platform)

    # lat: 20 turns per prompt template and day, 100..196 ms (one a day over the baseline's
    # p95); on D template p2 takes 1000 ms and more.
    for k, day in enumerate(days):
        for template in ("p1", "p2", "p3"):
            for i in range(20):
                slow = day == D and template == "p2"
                latency = 1000.0 + i if slow else 100.0 + 5 * i + k % 2
                s = f"{day}-{template}-{i}"
                ev.add("lat", day, f"u{i}", s, prompt_template=template, latency_ms=latency)

    # rel: a release long before the window, then new ones on D-2 and D.
    ev.add("rel", D - dt.timedelta(days=40), "a", "r0", model_version="m1", flights=["f-old"])
    for day in days:
        ev.add("rel", day, "a", f"r-{day}", model_version="m1", prompt_template="t1")
    ev.add("rel", _day(-2), "b", "r-new", model_version="m2", flights=["f-old", "f-new"])
    ev.add("rel", D, "c", "r-last", prompt_template="t2")

    # sess: 5 sessions a day in en from D-3; edge sessions around the window and midnight.
    for day in days[-4:]:
        for i in range(5):
            s = f"{day}-{i}"
            ev.add("sess", day, f"u{s}", s, "turn", handoff=(i == 0 and day == D), locale="en")
    ev.add("sess", _day(-4), "early", "x-early", "session_start", at="23:00:00", locale="fr")
    ev.add("sess", _day(-4), "early", "x-early", "turn", at="23:10:00", locale="fr")
    ev.add("sess", _day(-3), "early", "x-early", "turn", at="00:10:00", locale="fr")
    ev.add("sess", D, "late", "x-late", "turn", at="23:50:00", locale="fr")
    ev.add("sess", _day(1), "late", "x-late", "handoff", at="00:05:00", locale="en")
    ev.add("sess", D, "mixed", "x-mixed", "turn", at="10:00:00", locale="fr")
    ev.add("sess", D, "mixed", "x-mixed", "turn", at="10:01:00", locale="en")

    # err: 10 turns and 10 feedback events per platform and day from D-2; one error and one
    # thumbs down each; on D five errors on web and six thumbs down on ios.
    for day in days[-3:]:
        for platform in ("ios", "web"):
            errors = 5 if (day == D and platform == "web") else 1
            downs = 6 if (day == D and platform == "ios") else 1
            for i in range(10):
                s = f"{day}-{platform}-{i}"
                ev.add("err", day, f"u{i}", s, "turn", platform=platform)
                ev.add(
                    "err",
                    day,
                    f"u{i}",
                    s,
                    "feedback",
                    platform=platform,
                    feedback=-1 if i < downs else 1,
                )
                if i < errors:
                    ev.add("err", day, f"u{i}", s, "error", platform=platform)

    # fl: cost by flight set; on D flights listed out of order and twice, empty and absent.
    ev.add("fl", _day(-1), "a", "f0", cost_usd=1.0, flights=["a"])
    ev.add("fl", D, "a", "f1", cost_usd=1.0, flights=["b", "a", "b"])
    ev.add("fl", D, "a", "f2", cost_usd=2.0, flights=[])
    ev.add("fl", D, "a", "f3", cost_usd=4.0)
    ev.add("fl", D, "a", "f4", cost_usd=8.0, flights=["a"])

    # gap: 3 active users a day, except D-3 with none; dup: a user in two locales on D.
    for day in days:
        if day != _day(-3):
            for i in range(3):
                ev.add("gap", day, f"g{i}", f"{day}-g{i}", locale="en")
    for day in days[-3:]:
        ev.add("dup", day, "a", f"d-{day}", locale="en")
    ev.add("dup", D, "a", "d-extra", locale="de")
    return ev.rows


@pytest.fixture(scope="module")
def hand_rows() -> list[dict[str, Any]]:
    return _hand_made()


@pytest.fixture(scope="module")
def ws(
    hand_rows: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[assay.Workspace]:
    root = _ingest(hand_rows, tmp_path_factory.mktemp("rootcause"))
    with assay.Workspace.open(root) as workspace:
        yield workspace


def _row(ex: MetricExplanation, **slice_: Any) -> dict[str, Any]:
    """The explanation's row of exactly this slice."""
    found = [r for r in ex.explanation.rows if r["slice"] == slice_]
    assert len(found) == 1, (slice_, [r["slice"] for r in ex.explanation.rows])
    return found[0]


def _metric_rows(table: Any, since: dt.date, until: dt.date) -> dict[dt.date, dict[str, Any]]:
    return {r["day"]: r for r in table.to_pylist() if since <= r["day"] <= until}


# -- hand-made causes --------------------------------------------------------------------------


def test_a_handoff_jump_in_one_locale_is_that_locale_through_its_rate(
    ws: assay.Workspace,
) -> None:
    ex = explain_metric(ws, metric="handoff_rate", tenant="hand", day=D)
    assert ex.explanation.metric == "ratio"
    assert ex.explanation.root_causes == [{"locale": "fr"}]
    top = ex.explanation.rows[0]
    assert top["slice"] == {"locale": "fr"}
    assert top["effect"] == "rate"
    # fr: 2 of 20 sessions handed off a day before, 12 of 20 on D; the tenant 4/40 -> 14/40.
    assert (top["before"], top["after"], top["support"]) == (0.1, 0.6, 20.0)
    assert top["share"] == pytest.approx(1.0)
    assert (ex.explanation.before, ex.explanation.after) == pytest.approx((0.1, 0.35))
    assert ex.explanation.baseline_times == [_day(-i) for i in range(7, 0, -1)]
    assert ex.note is not None
    assert "first event" in ex.note


def test_handoff_rate_before_and_after_match_the_session_metric(ws: assay.Workspace) -> None:
    ex = explain_metric(ws, metric="handoff_rate", tenant="hand", day=D, dimensions=["platform"])
    rows = _metric_rows(ws.metrics.sessions(tenant="hand"), _day(-7), D)
    base = [rows[_day(-i)] for i in range(7, 0, -1)]
    pooled = sum(r["handoff_rate"] * r["sessions"] for r in base) / sum(r["sessions"] for r in base)
    assert ex.explanation.before == pytest.approx(pooled)
    assert ex.explanation.after == pytest.approx(rows[D]["handoff_rate"])


def test_a_dau_drop_on_one_platform_is_that_platform(ws: assay.Workspace) -> None:
    ex = explain_metric(ws, metric="dau", tenant="dau", day=D)
    assert ex.explanation.root_causes == [{"platform": "ios"}]
    top = ex.explanation.rows[0]
    assert top["slice"] == {"platform": "ios"}
    assert (top["before"], top["after"], top["share"]) == (20.0, 4.0, pytest.approx(1.0))
    assert "effect" not in top
    rows = _metric_rows(ws.metrics.dau(tenant="dau"), _day(-7), D)
    assert ex.explanation.before == pytest.approx(np.mean([rows[_day(-i)]["dau"] for i in (1, 7)]))
    assert ex.explanation.after == rows[D]["dau"] == 24
    # The other dimensions are null throughout: their one slice would be the whole tenant.
    assert ex.dimensions == ("locale", "platform")
    assert ex.note == (
        "not sliced by app_version, model_version, prompt_template, flight: one value in the window"
    )


def test_active_users_is_explained_through_dau_and_says_so(ws: assay.Workspace) -> None:
    ex = explain_metric(ws, metric="active_users", tenant="dau", day=D)
    assert ex.explanation.root_causes == [{"platform": "ios"}]
    assert ex.note is not None
    assert "through dau" in ex.note


def test_a_user_in_two_slices_counts_in_each_and_the_note_gives_both_sums(
    ws: assay.Workspace,
) -> None:
    ex = explain_metric(ws, metric="dau", tenant="dup", day=D, dimensions=["locale"])
    assert (ex.explanation.before, ex.explanation.after) == (1.0, 2.0)
    assert _row(ex, locale="de")["after"] == 1.0
    dau = _metric_rows(ws.metrics.dau(tenant="dup"), _day(-7), D)
    assert dau[D]["dau"] == 1
    assert ex.note is not None
    assert "counts in each" in ex.note
    assert "add up to 1 -> 2 while the tenant's dau is 1 -> 1" in ex.note


def test_a_latency_jump_in_one_prompt_template_is_that_template(
    ws: assay.Workspace, hand_rows: list[dict[str, Any]]
) -> None:
    ex = explain_metric(ws, metric="latency_p95", tenant="lat", day=D)
    assert ex.explanation.root_causes == [{"prompt_template": "p2"}]
    assert ex.explanation.rows[0]["effect"] == "rate"
    # The threshold: numpy's default (linear) percentile over the baseline's turn latencies.
    baseline = [
        r["latency_ms"]
        for r in hand_rows
        if r["tenant_id"] == "lat" and r["event_time"][:10] < D.isoformat()
    ]
    threshold = float(np.percentile(baseline, 95))
    assert ex.note is not None
    assert (
        "explains the change in the share of turns slower than the baseline p95 "
        f"({threshold:.6g} ms)"
    ) in ex.note
    on_d = [
        r["latency_ms"]
        for r in hand_rows
        if r["tenant_id"] == "lat" and r["event_time"][:10] == D.isoformat()
    ]
    assert ex.explanation.after == pytest.approx(sum(x > threshold for x in on_d) / len(on_d))
    assert ex.explanation.before == pytest.approx(
        sum(x > threshold for x in baseline) / len(baseline)
    )
    p2 = _row(ex, prompt_template="p2")
    assert (p2["before"], p2["after"], p2["support"]) == pytest.approx((0.05, 1.0, 20.0))


@pytest.mark.parametrize(
    ("metric", "cause", "column"),
    [
        ("error_rate", {"platform": "web"}, "error_rate"),
        ("thumbs_down_rate", {"platform": "ios"}, "thumbs_down_rate"),
    ],
)
def test_error_and_thumbs_down_rates_find_their_platform_and_match_the_metric(
    ws: assay.Workspace, metric: str, cause: dict[str, str], column: str
) -> None:
    ex = explain_metric(ws, metric=metric, tenant="err", day=D, baseline_days=2)
    assert ex.explanation.root_causes == [cause]
    top = ex.explanation.rows[0]
    assert top["effect"] == "rate"
    after = 0.5 if metric == "error_rate" else 0.6
    assert (top["before"], top["after"]) == pytest.approx((0.1, after))
    rows = _metric_rows(ws.metrics.sessions(tenant="err"), _day(-2), D)
    assert ex.explanation.after == pytest.approx(rows[D][column])
    assert ex.explanation.before == pytest.approx(rows[_day(-1)][column])


def test_sessions_count_on_their_first_event_in_its_slice_and_late_handoffs_count(
    ws: assay.Workspace,
) -> None:
    kw: dict[str, Any] = {"tenant": "sess", "day": D, "baseline_days": 3}
    sessions = explain_metric(ws, metric="sessions", dimensions=["locale"], **kw)
    # D: 5 en sessions, x-late and x-mixed (first events in fr); x-early started before the
    # window, so its turn on D-3 is not a session of D-3.
    assert _row(sessions, locale="fr")["after"] == 2.0
    assert (sessions.explanation.before, sessions.explanation.after) == (5.0, 7.0)
    # en (5 before, 5 after) did not move: no score, no share, so not listed.
    assert [r["slice"] for r in sessions.explanation.rows] == [{"locale": "fr"}]
    rows = _metric_rows(ws.metrics.sessions(tenant="sess"), _day(-3), D)
    assert sessions.explanation.after == rows[D]["sessions"]
    assert sessions.explanation.before == pytest.approx(
        np.mean([rows[_day(-i)]["sessions"] for i in (1, 2, 3)])
    )
    handoffs = explain_metric(ws, metric="handoff_rate", dimensions=["locale"], **kw)
    # x-late is handed off after midnight, by an event in en: it counts on D, in fr.
    assert handoffs.explanation.after == pytest.approx(rows[D]["handoff_rate"]) == 2 / 7
    assert _row(handoffs, locale="fr")["after"] == 0.5


def test_flight_is_the_sorted_set_of_flights_and_each_event_is_in_one_leaf(
    ws: assay.Workspace,
) -> None:
    ex = explain_metric(
        ws, metric="cost_usd", tenant="fl", day=D, baseline_days=1, dimensions=["flight"], top=None
    )
    after = {r["slice"]["flight"]: r["after"] for r in ex.explanation.rows}
    # ["b", "a", "b"] -> "a+b"; [] and no flights -> null; ["a"] -> "a".
    assert after == {"a": 8.0, "a+b": 1.0, None: 6.0}
    assert (ex.explanation.before, ex.explanation.after) == (1.0, 15.0)


def test_a_day_without_events_in_the_baseline_is_a_time_point(ws: assay.Workspace) -> None:
    ex = explain_metric(ws, metric="dau", tenant="gap", day=D, baseline_days=3)
    assert ex.explanation.baseline_times == [_day(-3), _day(-2), _day(-1)]
    rows = _metric_rows(ws.metrics.dau(tenant="gap"), _day(-3), D)
    assert rows[_day(-3)]["dau"] == 0
    assert ex.explanation.before == pytest.approx((0 + 3 + 3) / 3)


def test_the_baseline_starts_no_earlier_than_the_tenants_first_day(ws: assay.Workspace) -> None:
    ex = explain_metric(ws, metric="cost_usd", tenant="fl", day=D, baseline_days=7)
    assert ex.explanation.baseline_times == [_day(-1)]
    assert ex.baseline_days == 7
    assert ex.note is not None
    assert "baseline shortened to 1 day(s)" in ex.note


# -- release events ----------------------------------------------------------------------------


def test_release_events_list_first_appearances_in_the_window_only(ws: assay.Workspace) -> None:
    events = release_events(ws, tenant="rel", since=_day(-7), until=D)
    assert events == [
        {"field": "prompt_template", "value": "t1", "first_seen": _day(-7), "days_before": 7},
        {"field": "flight", "value": "f-new", "first_seen": _day(-2), "days_before": 2},
        {"field": "model_version", "value": "m2", "first_seen": _day(-2), "days_before": 2},
        {"field": "prompt_template", "value": "t2", "first_seen": D, "days_before": 0},
    ]
    # m1 and f-old first appeared 40 days before D: not releases of this window.
    narrow = release_events(ws, tenant="rel", since=_day(-1), until=_day(-1))
    assert narrow == []
    ex = explain_metric(ws, metric="dau", tenant="rel", day=D, baseline_days=3)
    assert [(r["value"], r["days_before"]) for r in ex.releases] == [
        ("f-new", 2),
        ("m2", 2),
        ("t2", 0),
    ]


def test_release_events_reject_an_unknown_tenant_and_a_reversed_window(
    ws: assay.Workspace,
) -> None:
    with pytest.raises(NotFoundError, match="assay tenants"):
        release_events(ws, tenant="nobody", since=_day(-1), until=D)
    with pytest.raises(UsageError, match="must not be after"):
        release_events(ws, tenant="rel", since=D, until=_day(-1))


# -- the result --------------------------------------------------------------------------------


def test_as_dict_is_json_with_dates_as_text_and_no_user_ids(ws: assay.Workspace) -> None:
    ex = explain_metric(ws, metric="handoff_rate", tenant="rel", day=D, baseline_days=3)
    data = ex.as_dict()
    text = json.dumps(data, allow_nan=False)
    assert data["day"] == D.isoformat()
    assert data["releases"][0]["first_seen"] == _day(-2).isoformat()
    assert data["rows"] == json.loads(text)["rows"]
    assert {"metric", "tenant_id", "day", "before", "after", "rows", "releases", "note"} <= set(
        data
    )
    stored = ws.read("events", where="WHERE tenant_id = ?", params=["rel"])
    for user in set(stored.column("user_id").to_pylist()) | {"a", "b", "c"}:
        assert f'"{user}"' not in text


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"metric": "wau"}, UsageError, "metric must be one of"),
        ({"dimensions": ["country"]}, UsageError, "unknown dimension"),
        ({"dimensions": []}, UsageError, "at least one"),
        ({"dimensions": "locale"}, UsageError, "list of names"),
        ({"baseline_days": 0}, UsageError, "baseline_days"),
        ({"day": _day(2)}, UsageError, "after the last stored event day"),
        ({"day": _day(-7)}, UsageError, "no baseline day"),
        ({"day": dt.datetime(2026, 1, 8, 12)}, UsageError, "datetime.date"),
        ({"tenant": "nobody"}, NotFoundError, "no stored event has this tenant_id"),
        ({"max_order": 0}, UsageError, "max_order"),
    ],
)
def test_bad_arguments_say_what_to_do(
    ws: assay.Workspace, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    args: dict[str, Any] = {"metric": "dau", "tenant": "hand", "day": D, **kwargs}
    with pytest.raises(error, match=message):
        explain_metric(ws, **args)


def test_latency_without_baseline_latencies_is_a_usage_error(ws: assay.Workspace) -> None:
    with pytest.raises(UsageError, match="turn latencies in the baseline"):
        explain_metric(ws, metric="latency_p95", tenant="dau", day=D)


# -- a property: leaves partition the metric ---------------------------------------------------


@st.composite
def _event_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    ev = _Events()
    n = draw(st.integers(1, 25))
    for i in range(n):
        day = _day(-draw(st.integers(0, 3)))
        flights = draw(st.one_of(st.none(), st.lists(st.sampled_from(["x", "y", "z"]), max_size=3)))
        fields: dict[str, Any] = {"cost_usd": float(draw(st.integers(0, 5)))}
        if flights is not None:
            fields["flights"] = flights
        locale = draw(st.sampled_from([None, "en", "fr"]))
        if locale is not None:
            fields["locale"] = locale
        ev.add(
            "p",
            day,
            f"u{draw(st.integers(0, 3))}",
            f"s{draw(st.integers(0, 5))}",
            draw(st.sampled_from(["turn", "turn", "handoff", "session_start"])),
            at=f"{draw(st.integers(0, 23)):02d}:00:{i % 60:02d}",
            **fields,
        )
    ev.add("p", _day(-4), "u0", "s-first", "turn")  # the tenant's first day, before the window
    ev.add("p", D, "u9", "s-last", "turn", at="23:59:59", cost_usd=0.5, flights=["y", "x"])
    return ev.rows


def _leaf_key(row: dict[str, Any], dim: str) -> str | None:
    if dim == "locale":
        return typing.cast(str | None, row.get("locale"))
    flights = sorted(set(row.get("flights") or []))
    return "+".join(flights) if flights else None


def _reference(
    rows: list[dict[str, Any]], day: dt.date
) -> tuple[dict[tuple[str, Any], float], dict[tuple[str, Any], float], float]:
    """Per (dim, value) slice on ``day``: cost, sessions (by their first event); and the
    share of those sessions handed off."""
    cost: dict[tuple[str, Any], float] = defaultdict(float)
    for r in rows:
        if r["event_time"][:10] == day.isoformat():
            for dim in ("locale", "flight"):
                cost[dim, _leaf_key(r, dim)] += r.get("cost_usd", 0.0)
    by_session: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_session[r["session_id"]].append(r)
    sessions: dict[tuple[str, Any], float] = defaultdict(float)
    handed = 0
    for evs in by_session.values():
        first = min(evs, key=lambda e: (e["event_time"], int(e["event_id"][1:])))
        if first["event_time"][:10] == day.isoformat():
            for dim in ("locale", "flight"):
                sessions[dim, _leaf_key(first, dim)] += 1
            handed += any(e["event_type"] == "handoff" for e in evs)
    n = sum(v for (dim, _), v in sessions.items() if dim == "locale")
    return cost, sessions, handed / n if n else float("nan")


@pytest.fixture(scope="module")
def empty_ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[assay.Workspace]:
    with assay.Workspace.open(tmp_path_factory.mktemp("property") / "ws", create=True) as w:
        yield w


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=_event_sets())
def test_leaves_add_up_to_the_metric_for_any_events(
    empty_ws: assay.Workspace, rows: list[dict[str, Any]]
) -> None:
    # Each example is a new tenant of one workspace (a workspace per example is slow).
    tenant = f"p-{uuid.uuid4().hex}"
    rows = [{**r, "tenant_id": tenant} for r in rows]
    cost, sessions, handoff_rate = _reference(rows, D)
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "events.jsonl"
        src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        assert ingest_paths(empty_ws, [src]).total("rejected") == 0
    for metric, parts in (("cost_usd", cost), ("sessions", sessions)):
        ex = explain_metric(
            empty_ws,
            metric=metric,
            tenant=tenant,
            day=D,
            baseline_days=3,
            top=None,
            dimensions=["locale", "flight"],
            max_order=1,
        )
        # Each event (session) is in exactly one leaf: the slices of one dimension add up to
        # the metric, and each slice has its plain-Python value.
        for dim in ex.dimensions:
            total = sum(v for (k, _), v in parts.items() if k == dim)
            assert ex.explanation.after == pytest.approx(total)
        for r in ex.explanation.rows:
            if not r["slice"]:  # the whole tenant, as a root cause
                assert r["after"] == pytest.approx(ex.explanation.after)
                continue
            ((dim, value),) = r["slice"].items()
            assert r["after"] == pytest.approx(parts.get((dim, value), 0.0))
    ex = explain_metric(
        empty_ws,
        metric="handoff_rate",
        tenant=tenant,
        day=D,
        baseline_days=3,
        dimensions=["locale"],
    )
    assert ex.explanation.after == pytest.approx(handoff_rate, nan_ok=True)


# -- synthetic telemetry -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def synth_ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[assay.Workspace, Any]]:
    folder = tmp_path_factory.mktemp("synth")
    out = synth_write(
        folder / "data",
        SynthConfig(tenants=8, users=60, days=40, seed=3, start=dt.date(2026, 1, 1)),
    )
    with assay.Workspace.open(folder / "ws", create=True) as workspace:
        ingest_paths(workspace, [folder / "data"])
        yield workspace, out.truth


def test_synthetic_handoff_jump_is_found_with_its_release(
    synth_ws: tuple[assay.Workspace, Any],
) -> None:
    workspace, truth = synth_ws
    (incident,) = [i for i in truth["incidents"] if i["kind"] == "handoff_jump"]
    start = dt.date.fromisoformat(incident["start"])
    ex = explain_metric(workspace, metric="handoff_rate", tenant=incident["tenant_id"], day=start)
    top = ex.explanation.rows[0]
    assert top["root_cause"]
    wanted = {("locale", incident["locale"]), ("model_version", incident["model_version"])}
    assert set(top["slice"].items()) & wanted
    assert ex.explanation.after > ex.explanation.before
    new_model = [r for r in ex.releases if r["field"] == "model_version"]
    assert [(r["value"], r["days_before"]) for r in new_model] == [(incident["model_version"], 0)]


def test_synthetic_outage_output_holds_no_stored_user_id(
    synth_ws: tuple[assay.Workspace, Any],
) -> None:
    workspace, truth = synth_ws
    (incident,) = [i for i in truth["incidents"] if i["kind"] == "outage"]
    tenant, start = incident["tenant_id"], dt.date.fromisoformat(incident["start"])
    ex = explain_metric(workspace, metric="dau", tenant=tenant, day=start)
    assert ex.explanation.after < 0.4 * ex.explanation.before
    text = json.dumps(ex.as_dict())
    users = workspace.read("events", where="WHERE tenant_id = ?", params=[tenant])
    assert not any(u in text for u in set(users.column("user_id").to_pylist()))


# -- CLI ---------------------------------------------------------------------------------------


def _invoke(args: list[str]) -> Any:
    return runner.invoke(assay_app, ["explain", *args])


def test_cli_metric_literal_matches_the_library() -> None:
    assert typing.get_args(explain_cli.ExplainMetric) == EXPLAIN_METRICS


def test_cli_json_is_as_dict(ws: assay.Workspace) -> None:
    args = ["--metric", "handoff_rate", "--tenant", "hand", "--day", D.isoformat()]
    result = _invoke([*args, "--workspace", str(ws.path), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    expected = explain_metric(ws, metric="handoff_rate", tenant="hand", day=D).as_dict()
    assert data == json.loads(json.dumps(expected))
    assert data["rows"][0]["slice"] == {"locale": "fr"}


def test_cli_table_shows_the_slices_then_the_release_events(ws: assay.Workspace) -> None:
    args = ["--metric", "error_rate", "--tenant", "rel", "--day", D.isoformat()]
    args += ["--baseline-days", "3", "--dimensions", "model_version, prompt_template"]
    result = _invoke([*args, "--max-order", "1", "--top", "2", "-w", str(ws.path)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "slice",
        "root_cause",
        "effect",
        "score",
        "share",
        "before",
        "after",
        "support",
    ]
    at = lines.index("release events")
    assert lines[at + 1].split() == ["field", "value", "first_seen", "days_before"]
    assert [line.split() for line in lines[at + 2 :]] == [
        ["flight", "f-new", "2026-01-06", "2"],
        ["model_version", "m2", "2026-01-06", "2"],
        ["prompt_template", "t2", "2026-01-08", "0"],
    ]
    assert "error_rate of tenant rel on 2026-01-08" in result.stderr


def test_cli_sum_metric_has_no_effect_column_and_says_when_nothing_was_released(
    ws: assay.Workspace,
) -> None:
    args = ["--metric", "dau", "--tenant", "dau", "--day", D.isoformat(), "-w", str(ws.path)]
    result = _invoke([*args, "--dimensions", "platform"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "effect" not in lines[0].split()
    assert lines[1].split()[:2] == ["platform=ios", "true"]
    assert "no release events in the window" in result.stderr


def test_cli_without_options_prints_help_and_exits_0() -> None:
    result = _invoke([])
    assert result.exit_code == 0
    assert "--metric" in result.stdout
    assert "table" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tenant", "hand"], "--metric, --day missing"),
        (["--metric", "dau", "--day", "2026-01-08"], "--tenant missing"),
        (["--top", "3"], "--metric, --tenant, --day missing"),
        (["--metric", "dau", "--tenant", "hand", "--day", "08/01/2026"], "YYYY-MM-DD"),
        (
            ["--metric", "dau", "--tenant", "nobody", "--day", "2026-01-08"],
            "no stored event has this tenant_id",
        ),
        (
            ["--metric", "dau", "--tenant", "hand", "--day", "2026-01-08", "--dimensions", "x"],
            "unknown dimension",
        ),
    ],
)
def test_cli_usage_errors_exit_2_with_a_message(
    ws: assay.Workspace, args: list[str], message: str
) -> None:
    result = _invoke([*args, "--workspace", str(ws.path)])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_cli_unknown_metric_is_refused_by_the_parser(ws: assay.Workspace) -> None:
    args = ["--metric", "wau", "--tenant", "hand", "--day", "2026-01-08", "-w", str(ws.path)]
    result = _invoke(args)
    assert result.exit_code == 2
    assert "wau" in result.output


def test_cli_table_subcommand_still_works_alongside(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("day,k,n\n1,a,10\n1,b,10\n2,a,10\n2,b,40\n", encoding="utf-8")
    args = ["table", str(path), "--time-col", "day", "--dims", "k", "--value", "n", "--at", "2"]
    result = _invoke([*args, "-f", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["slice"] == {"k": "b"}


def test_cli_engine_duckdb_is_the_default_engine(ws: assay.Workspace) -> None:
    args = ["--metric", "handoff_rate", "--tenant", "hand", "--day", D.isoformat()]
    args += ["--workspace", str(ws.path), "--format", "json"]
    default, explicit = _invoke(args), _invoke([*args, "--engine", "duckdb"])
    assert explicit.exit_code == 0, explicit.output
    assert json.loads(explicit.stdout) == json.loads(default.stdout)
    assert json.loads(explicit.stdout)["rows"][0]["slice"] == {"locale": "fr"}


def test_cli_spark_master_without_the_pyspark_engine_is_a_usage_error(ws: assay.Workspace) -> None:
    args = ["--metric", "dau", "--tenant", "hand", "--day", D.isoformat()]
    result = _invoke([*args, "--workspace", str(ws.path), "--spark-master", "local[1]"])
    assert result.exit_code == 2
    assert "--engine pyspark" in result.stderr
    assert "Traceback" not in result.output


def test_a_bare_store_workspace_explains_on_duckdb_the_same(ws: assay.Workspace) -> None:
    from assay.store import Workspace as StoreWorkspace

    want = explain_metric(ws, metric="handoff_rate", tenant="hand", day=D).as_dict()
    want_releases = release_events(ws, tenant="rel", since=_day(-7), until=D)
    with StoreWorkspace.open(ws.path) as bare:
        assert not hasattr(bare, "events")  # no engine of its own: DuckDB is opened for it
        got = explain_metric(bare, metric="handoff_rate", tenant="hand", day=D).as_dict()
        releases = release_events(bare, tenant="rel", since=_day(-7), until=D)
    assert got == want
    assert got["rows"][0]["slice"] == {"locale": "fr"}
    assert releases == want_releases
    assert releases  # the "rel" tenant has release events in that window
