"""The explanation a roll-back's incident carries: `explain`'s slice search on the gates' own
counts, the stable release as the baseline and the candidate as the point explained."""

from __future__ import annotations

from typing import Any

import pytest

from assay.rollout import Gate
from assay.rollout._evaluate import explain_rollback, judge


def _row(arm: str, tenant: str, locale: str, sessions: int, handoffs: int) -> dict[str, Any]:
    return {"arm": arm, "tenant_id": tenant, "locale": locale, "platform": "web",
            "sessions": sessions, "handoffs": handoffs}  # fmt: skip


def _counts() -> list[dict[str, Any]]:
    """Two tenants, three locales; the candidate hands off 12% in de-DE, 1.2% elsewhere
    (as the stable release does everywhere)."""
    rows = []
    for tenant in ("acme", "globex"):
        for locale in ("en-US", "fr-FR", "de-DE"):
            rows.append(_row("stable", tenant, locale, 5000, 60))
            bad = locale == "de-DE"
            rows.append(_row("candidate", tenant, locale, 1000, 120 if bad else 12))
    return rows


def test_the_bad_locale_is_the_root_cause_with_the_hand_computed_rates() -> None:
    gate = [Gate("handoff", "handoff_rate", ("all", "locale"), min_sample=100)]
    evaluation = judge(_counts(), gate, last_step=False)
    assert evaluation.verdict == "rollback"
    found = explain_rollback(evaluation, "handoff_rate")
    assert found is not None
    assert (found["numerator"], found["denominator"]) == ("handoffs", "sessions")
    # Stable: 6 x 60 of 6 x 5,000; candidate: (2 x 120 + 4 x 12) of 6 x 1,000.
    assert found["before"] == pytest.approx(360 / 30000)
    assert found["after"] == pytest.approx(288 / 6000)
    causes = [r["slice"] for r in found["rows"] if r["root_cause"]]
    assert causes == [{"locale": "de-DE"}]
    (de,) = [r for r in found["rows"] if r["slice"] == {"locale": "de-DE"}]
    # The slice's own rates: 120 of 10,000 on stable, 240 of 2,000 on the candidate.
    assert de["before"] == pytest.approx(120 / 10000)
    assert de["after"] == pytest.approx(240 / 2000)


def test_no_explanation_for_a_metric_without_counts_or_an_arm_without_data() -> None:
    gate = [Gate("handoff", "handoff_rate", ("all",), min_sample=100)]
    evaluation = judge(_counts(), gate, last_step=False)
    assert explain_rollback(evaluation, "shadow_agreement") is None
    stable_only = [r for r in _counts() if r["arm"] == "stable"]
    assert explain_rollback(judge(stable_only, gate, last_step=False), "handoff_rate") is None
