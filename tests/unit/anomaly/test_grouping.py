"""One incident per problem: grouping the fleet scan's episodes by their cause (issue 12)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from assay._records import causes_text
from assay.anomaly import SeenCause, group_candidates, root_causes
from assay.anomaly._scan import Candidate

DAY = dt.date(2026, 3, 2)
RAG = {"prompt_template": "rag-v3"}
RAG_PAIR = ("prompt_template", "rag-v3")


def episode(
    tenant: str,
    metric: str = "latency_p95",
    *,
    slice_: dict[str, Any] | None = None,
    start: int = 0,
    days: int = 3,
    direction: str = "up",
    q: float = 1e-4,
) -> Candidate:
    return Candidate(
        tenant_id=tenant,
        metric=metric,
        slice=dict(slice_ or {}),
        start=DAY + dt.timedelta(days=start),
        end=DAY + dt.timedelta(days=start + days - 1),
        direction=direction,  # type: ignore[arg-type]
        severity="high",
        expected=2500.0,
        observed=4800.0,
        q_value=q,
    )


def test_a_release_that_regresses_latency_in_five_tenants_and_three_locales_is_one_incident() -> (
    None
):
    tenants = [f"t{i}" for i in range(5)]
    found = [episode(t, start=i % 2) for i, t in enumerate(tenants)]
    causes: list[list[dict[str, Any]]] = [[RAG] for _ in tenants]
    for locale, tenant in (("en-US", "t0"), ("fr-FR", "t1"), ("ja-JP", "t3")):
        found.append(episode(tenant, slice_={"locale": locale}, start=1, days=2))
        causes.append([RAG])
    # One tenant's explanation also names an app version: the shared template wins.
    causes[2] = [{"app_version": "4.3.0", "prompt_template": "rag-v3"}]
    groups = group_candidates(found, causes, gap_days=3)
    assert len(groups) == 1
    [group] = groups
    assert (group.key, group.cause) == (
        "release|prompt_template=rag-v3",
        {"field": "prompt_template", "value": "rag-v3"},
    )
    assert sorted({c.tenant_id for c, _ in group.members}) == tenants
    assert len(group.members) == 8
    # The lead: the earliest onset, a whole tenant before a slice, then the strongest.
    assert (group.members[0][0].tenant_id, group.members[0][0].slice) == ("t0", {})


def test_two_unrelated_problems_on_the_same_day_are_two_incidents() -> None:
    found = [
        episode("t0"),
        episode("t1"),
        episode("t2", "dau", direction="down"),  # an outage of t2, the same day
        episode("t2", "error_rate"),
        episode("t2", "dau", slice_={"locale": "fr-FR"}, direction="down"),
    ]
    causes = [[RAG], [RAG], [{}], [{"platform": "web"}], [{}]]
    groups = group_candidates(found, causes, gap_days=3)
    assert [(g.key, sorted(c.key for c, _ in g.members)) for g in groups] == [
        (
            "release|prompt_template=rag-v3",
            ["latency_p95|tenant=t0", "latency_p95|tenant=t1"],
        ),
        (
            "tenant=t2",
            ["dau|tenant=t2", "dau|tenant=t2|locale=fr-FR", "error_rate|tenant=t2"],
        ),
    ]


def test_two_releases_of_one_day_are_two_incidents_and_a_later_onset_is_another() -> None:
    found = [
        episode("t0"),
        episode("t1", "handoff_rate"),
        episode("t0", start=10),  # the same cause, a week after the first episode ended
        episode("t3", "dau", start=20),  # no cause known: its tenant's own incident
    ]
    causes = [[RAG], [{"model_version": "v2.1"}], [RAG], []]
    groups = group_candidates(found, causes, gap_days=3)
    assert [(g.key, [c.start for c, _ in g.members]) for g in groups] == [
        ("release|model_version=v2.1", [DAY]),
        ("release|prompt_template=rag-v3", [DAY]),
        ("release|prompt_template=rag-v3", [DAY + dt.timedelta(days=10)]),
        ("tenant=t3", [DAY + dt.timedelta(days=20)]),
    ]


def test_a_missing_value_is_not_a_release_cause() -> None:
    groups = group_candidates(
        [episode("t0"), episode("t1")], [[{"model_version": None}], []], gap_days=3
    )
    assert [g.key for g in groups] == ["tenant=t0", "tenant=t1"]


def test_root_causes_drop_missing_values_beside_known_ones_and_refinements() -> None:
    rows = [
        {"slice": {"flight": None, "platform": "teams"}, "root_cause": True},
        {"slice": {"locale": "en-US", "platform": "android", "prompt_template": "rag-v3"}},
        {"slice": RAG, "root_cause": True},
        {"slice": {"locale": "en-US", "prompt_template": "rag-v3"}, "root_cause": True},
        {"slice": {"flight": None}, "root_cause": True},
        {"slice": {"platform": "web"}, "root_cause": True},
    ]
    assert root_causes(rows) == [RAG, {"platform": "web"}]
    # A parent ranked below its child is the same cause again.
    child = {"locale": "de-DE", "model_version": "v2.1"}
    parent = [{"slice": child, "root_cause": True}, {"slice": {"model_version": "v2.1"}}]
    parent[1]["root_cause"] = True
    assert root_causes(parent) == [child]
    assert causes_text(root_causes(rows)) == "prompt_template=rag-v3; platform=web"
    # Only when nothing else is found is the missing value the finding.
    assert causes_text(root_causes([{"slice": {"flight": None}, "root_cause": True}])) == (
        "flight=(none)"
    )


slices = st.dictionaries(
    st.sampled_from(["locale", "platform", "flight", "prompt_template"]),
    st.one_of(st.none(), st.sampled_from(["a", "b"])),
    max_size=3,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(slices, st.booleans()), max_size=8))
def test_root_causes_are_marked_known_and_never_refine_each_other(
    rows: list[tuple[dict[str, Any], bool]],
) -> None:
    table = [{"slice": s, "root_cause": rc} for s, rc in rows]
    out = root_causes(table)
    marked = [s for s, rc in rows if rc]
    assert all(x in marked for x in out)
    if any(None not in s.values() for s in marked):
        assert all(None not in x.values() for x in out)
    for i, a in enumerate(out):
        for b in out[i + 1 :]:
            assert not a.items() <= b.items()
            assert not b.items() <= a.items()
    # Nothing marked is lost without a reason: it is kept, or refines a kept one or is its
    # parent, or has a missing value beside a known cause.
    known = any(None not in x.values() for x in marked)
    for s in marked:
        overlaps = any(x.items() <= s.items() or s.items() <= x.items() for x in out)
        assert s in out or overlaps or (known and None in s.values())


def test_a_slice_without_a_release_cause_takes_its_tenants_on_touching_days() -> None:
    found = [
        episode("t0"),
        episode("t1"),
        episode("t1", slice_={"locale": "de-DE"}, start=1),  # explained as the whole tenant
        episode("t1", "dau", slice_={"locale": "de-DE"}, start=1, direction="down"),
        episode("t1", slice_={"locale": "fr-FR"}, start=9),  # days do not touch t1's
        episode("t2", slice_={"locale": "ja-JP"}, start=1),  # no episode of t2 with a cause
    ]
    causes = [[RAG], [RAG], [{}], [{}], [], []]
    groups = group_candidates(found, causes, gap_days=3)
    assert [(g.key, sorted(c.key for c, _ in g.members)) for g in groups] == [
        (
            "release|prompt_template=rag-v3",
            [
                "latency_p95|tenant=t0",
                "latency_p95|tenant=t1",
                "latency_p95|tenant=t1|locale=de-DE",
            ],
        ),
        ("tenant=t1", ["dau|tenant=t1|locale=de-DE"]),  # another metric: its own
        ("tenant=t2", ["latency_p95|tenant=t2|locale=ja-JP"]),
        ("tenant=t1", ["latency_p95|tenant=t1|locale=fr-FR"]),
    ]
    # An episode recorded by an earlier scan (the tenant's, before a scan by locale) lends its
    # cause the same way.
    earlier = SeenCause("t2", "latency_p95", "up", DAY, DAY + dt.timedelta(days=2), RAG_PAIR)
    [group] = group_candidates([found[5]], [[]], gap_days=3, seen=[earlier])
    assert (group.key, group.cause) == (
        "release|prompt_template=rag-v3",
        {"field": "prompt_template", "value": "rag-v3"},
    )
