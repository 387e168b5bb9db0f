"""``assay regressions`` on the RAG rates (issue 17, item 2): ``uncited_answer_rate`` and
``uncited_retrieved_share`` of a new release value against its predecessor.

Hand-written events whose counts are worked out below; p-values and intervals are recomputed
with statsmodels, the Benjamini-Hochberg q-values by hand. A workspace without RAG answers gives
the rows and regressions it gave before the RAG rates existed (the four old metrics, the same
number of tests).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

import assay
from assay.drift import RegressionConfig, find_regressions
from assay.ingest import ingest_paths
from assay.metrics import release_counts

D = dt.date(2026, 3, 10)  # the release day
LAST = D + dt.timedelta(days=6)
PER_DAY = 40  # answers per value and day
OLD_METRICS = {"handoff_rate", "thumbs_down_rate", "error_rate", "latency_p95"}


class _Events:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def answer(self, tenant: str, day: dt.date, sid: str, **fields: Any) -> None:
        """A session of one turn (latency 1000 ms + a little) with ``fields``."""
        for at, kind, extra in (
            ("09:00:00", "session_start", {}),
            ("09:00:05", "turn", {"latency_ms": 1000.0 + len(self.rows) % 50, **fields}),
        ):
            self.rows.append(
                {
                    "event_id": f"e{len(self.rows)}",
                    "event_time": f"{day.isoformat()}T{at}Z",
                    "event_type": kind,
                    "tenant_id": tenant,
                    "user_id": f"u-{sid}",
                    "session_id": sid,
                    **extra,
                }
            )


def _rag_rows() -> list[dict[str, Any]]:
    """Tenant ``cites``: template ``old`` all along, ``new`` from D on (same days).

    Per day, ``old``: 40 answers retrieving d1, d2, d3; 4 cite nothing (``[]``), 36 cite d1, d2
    -> uncited answers 4/40, uncited retrieved 4*3 + 36*1 = 48 of 120.
    ``new``: 40 answers retrieving d1, d2, d3, d1 (3 distinct); 16 cite nothing (null), 12 cite
    d1, 12 cite d1, d2 and d9 (never retrieved: a citation, not a retrieved doc) -> 16/40 and
    16*3 + 12*2 + 12*1 = 84 of 120.

    Tenant ``norag``: template ``a`` all along retrieving d1 and citing nothing; ``b`` from D on
    retrieves nothing (empty list): ``b`` has no answers, so no RAG row.

    Tenant ``edited``: templates ``a`` and ``b`` all along, 40 answers a day each retrieving d1;
    ``b`` leaves 4 uncited a day throughout, ``a`` 4 before D and 20 from D (edited in place).
    """
    ev = _Events()
    for offset in range(-7, 7):
        day = D + dt.timedelta(days=offset)
        for i in range(PER_DAY):
            sid = f"{day}-{i}"
            cited_old = [] if i < 4 else ["d1", "d2"]
            ev.answer(
                "cites",
                day,
                f"o-{sid}",
                prompt_template="old",
                retrieved_doc_ids=["d1", "d2", "d3"],
                cited_doc_ids=cited_old,
            )
            ev.answer("norag", day, f"a-{sid}", prompt_template="a", retrieved_doc_ids=["d1"])
            for template, uncited in (("a", 20 if offset >= 0 else 4), ("b", 4)):
                ev.answer(
                    "edited",
                    day,
                    f"e{template}-{sid}",
                    prompt_template=template,
                    retrieved_doc_ids=["d1"],
                    cited_doc_ids=[] if i < uncited else ["d1"],
                )
            if offset >= 0:
                cited_new = None if i < 16 else ["d1"] if i < 28 else ["d1", "d2", "d9"]
                ev.answer(
                    "cites",
                    day,
                    f"n-{sid}",
                    prompt_template="new",
                    retrieved_doc_ids=["d1", "d2", "d3", "d1"],
                    cited_doc_ids=cited_new,
                )
                ev.answer("norag", day, f"b-{sid}", prompt_template="b", retrieved_doc_ids=[])
    return ev.rows


def _plain_rows() -> list[dict[str, Any]]:
    """No RAG at all: model_version ``v1`` all along, ``v2`` from D on; per day 40 sessions of
    each, v1 hands off 2, v2 8 (5% -> 20%)."""
    ev = _Events()
    for offset in range(-7, 7):
        day = D + dt.timedelta(days=offset)
        for i in range(PER_DAY):
            sid = f"{day}-{i}"
            ev.answer("plain", day, f"p1-{sid}", model_version="v1", handoff=i < 2)
            if offset >= 0:
                ev.answer("plain", day, f"p2-{sid}", model_version="v2", handoff=i < 8)
    return ev.rows


def _workspace(root: Path, rows: list[dict[str, Any]]) -> Path:
    src = root / "events.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with assay.Workspace.open(root / "ws", create=True) as ws:
        summary = ingest_paths(ws, [src])
        assert summary.total("rejected") == 0
    return root / "ws"


@pytest.fixture(scope="module")
def rag_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _workspace(tmp_path_factory.mktemp("rag"), _rag_rows())


@pytest.fixture(scope="module")
def rag_report(rag_path: Path) -> Any:
    with assay.Workspace.open(rag_path) as ws:
        return find_regressions(ws, since=D - dt.timedelta(days=7), record=False)


def test_release_counts_has_the_rag_counts_by_hand(rag_path: Path) -> None:
    with assay.Workspace.open(rag_path) as ws:
        table = release_counts(ws.events(), "prompt_template", until=LAST)
    names = ("answers", "uncited_answers", "retrieved", "uncited_retrieved")
    got = {
        (r["tenant_id"], r["value"]): tuple(r[n] for n in names)
        for r in table.to_pylist()
        if r["day"] == D
    }
    assert got == {
        ("cites", "old"): (40, 4, 120, 48),
        ("cites", "new"): (40, 16, 120, 84),  # d1 listed twice counts once; d9 not retrieved
        ("norag", "a"): (40, 40, 40, 40),
        ("norag", "b"): (0, 0, 0, 0),  # turns, but an empty retrieved list: not answers
        ("edited", "a"): (40, 20, 40, 20),
        ("edited", "b"): (40, 4, 40, 4),
    }


@pytest.fixture(scope="module")
def plain_reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    """The plain workspace's report, with and without the in-place comparisons."""
    path = _workspace(tmp_path_factory.mktemp("plain"), _plain_rows())
    since = D - dt.timedelta(days=7)
    with assay.Workspace.open(path) as ws:
        return (
            find_regressions(ws, since=since, record=False),
            find_regressions(
                ws, since=since, record=False, config=RegressionConfig(in_place=False)
            ),
        )


def _one(report: Any, tenant: str, value: str, metric: str) -> dict[str, Any]:
    (row,) = [
        r
        for r in report.rows
        if (r["tenant_id"], r["value"], r["metric"]) == (tenant, value, metric)
    ]
    return row


@pytest.mark.parametrize(
    ("metric", "x1", "n1", "x0", "n0", "severity"),
    [
        # 7 days from D: new 16 of 40 answers a day uncited, old 4 of 40.
        ("uncited_answer_rate", 112, 280, 28, 280, "high"),  # 0.4 vs 0.1: 4x
        # new 84 of 120 retrieved doc ids a day uncited, old 48 of 120.
        ("uncited_retrieved_share", 588, 840, 336, 840, "medium"),  # 0.7 vs 0.4: 1.75x
    ],
)
def test_a_new_template_that_cites_less_is_a_regression_with_the_hand_computed_rates(
    rag_report: Any, metric: str, x1: int, n1: int, x0: int, n0: int, severity: str
) -> None:
    row = _one(rag_report, "cites", "new", metric)
    assert (row["field"], row["baseline"], row["comparison"]) == (
        "prompt_template",
        "old",
        "release",
    )
    assert (row["basis"], row["start"], row["end"]) == ("same_days", D, LAST)
    assert (row["n_new"], row["n_base"]) == (n1, n0)
    assert row["new_value"] == pytest.approx(x1 / n1, abs=1e-12)
    assert row["base_value"] == pytest.approx(x0 / n0, abs=1e-12)
    assert row["ratio"] == pytest.approx((x1 / n1) / (x0 / n0), rel=1e-12)
    assert row["diff"] == pytest.approx(x1 / n1 - x0 / n0, abs=1e-12)
    _, p = proportions_ztest([x1, x0], [n1, n0], alternative="larger")
    assert row["test"] == "z"
    assert row["p_value"] == pytest.approx(p, rel=1e-9)
    lo, hi = confint_proportions_2indep(x1, n1, x0, n0, method="newcomb", compare="diff")
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(lo, abs=1e-9), pytest.approx(hi))
    assert row["regression"]
    assert row["severity"] == severity
    assert row["q_value"] <= RegressionConfig().fdr


def test_only_the_rag_rates_of_the_new_template_regress(rag_report: Any) -> None:
    found = {(r["tenant_id"], r["value"], r["metric"]) for r in rag_report.regressions}
    assert found == {
        ("cites", "new", "uncited_answer_rate"),
        ("cites", "new", "uncited_retrieved_share"),
        ("edited", "a", "uncited_answer_rate"),
        ("edited", "a", "uncited_retrieved_share"),
    }


def test_a_template_edited_in_place_to_cite_less_is_found_against_the_other_template(
    rag_report: Any,
) -> None:
    # On D: a's 7 days after, 140 of 280 uncited, against 28 of 280 before; the control b 28 of
    # 280 on both sides. Ratio of risk ratios (0.5 / 0.1) / (0.1 / 0.1) = 5; counterfactual 0.1.
    for metric in ("uncited_answer_rate", "uncited_retrieved_share"):
        row = _one(rag_report, "edited", "a", metric)
        assert (row["comparison"], row["basis"], row["start"]) == ("in_place", "did", D)
        assert (row["n_new"], row["n_base"]) == (280, 280)
        assert row["new_value"] == pytest.approx(0.5, abs=1e-12)
        assert row["base_value"] == pytest.approx(0.1, abs=1e-12)
        assert row["ratio"] == pytest.approx(5.0, rel=1e-12)
        assert row["severity"] == "high"


def test_a_release_without_answers_has_no_rag_row(rag_report: Any) -> None:
    # norag's b retrieves nothing: the old metrics are compared, the RAG rates are not.
    metrics = {r["metric"] for r in rag_report.rows if r["tenant_id"] == "norag"}
    assert metrics == OLD_METRICS
    assert {r["value"] for r in rag_report.rows if r["tenant_id"] == "norag"} == {"b"}


def test_a_workspace_without_rag_answers_gives_the_regressions_it_gave_before(
    plain_reports: tuple[Any, Any],
) -> None:
    full, plain_report = plain_reports
    # In place, v1 against the control v2 on the days D+1 .. D+6 (v2 has no "before" week on
    # D): handoff, error and latency, 18 tests; none regresses (v1 never changes).
    assert full.tests == 3 + 6 * 3
    assert [(r["value"], r["metric"]) for r in full.regressions] == [("v2", "handoff_rate")]
    rows = plain_report.rows
    assert {r["metric"] for r in rows} == OLD_METRICS
    assert {(r["value"], r["comparison"]) for r in rows} == {("v2", "release")}
    # Tested: handoff, error (0 of 280 each side: Fisher, p = 1) and latency; no feedback, so
    # the thumbs-down rate is not tested. Nothing else enters Benjamini-Hochberg.
    assert plain_report.tests == 3
    handoff = _one(plain_report, "plain", "v2", "handoff_rate")
    _, p_h = proportions_ztest([56, 14], [280, 280], alternative="larger")
    assert handoff["p_value"] == pytest.approx(p_h, rel=1e-9)
    latency = _one(plain_report, "plain", "v2", "latency_p95")
    error = _one(plain_report, "plain", "v2", "error_rate")
    assert error["p_value"] == 1.0
    # Benjamini-Hochberg over three p-values, by hand: the smallest times 3 (capped by the
    # next ones' adjusted values).
    ps = sorted([p_h, latency["p_value"], 1.0])
    q_smallest = min(ps[0] * 3, ps[1] * 3 / 2, ps[2])
    assert handoff["q_value"] == pytest.approx(q_smallest, rel=1e-9)
    assert [(r["value"], r["metric"]) for r in plain_report.regressions] == [("v2", "handoff_rate")]
