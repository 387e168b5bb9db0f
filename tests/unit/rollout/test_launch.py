"""The launch gate: each criterion against hand-worked numbers and scipy's exact interval, the
card's numbers against the evaluation report, HTML escaping, and the check blocking until an
approving sign-off (and again after a reject)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

sys.path.insert(0, str(Path(__file__).parent))

from launch_data import QUALITY_EVALUATION, new_workspace, register

import assay
from assay import NotFoundError, UsageError
from assay.models._lifecycle import registry
from assay.rollout import (
    DEFAULT_POLICIES,
    Holdout,
    LaunchPolicy,
    clopper_pearson,
    launch_check,
    launch_ready,
    record_holdout,
    sign,
    signoffs,
)
from assay.rollout._launch import CARD_HTML, CARD_MD, CHECK_JSON, Evidence, evaluate

# -- the exact interval -----------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 400),
    frac=st.floats(0, 1),
    confidence=st.sampled_from([0.8, 0.9, 0.95, 0.99]),
)
def test_clopper_pearson_matches_scipy_binomtest(n: int, frac: float, confidence: float) -> None:
    k = round(frac * n)
    upper = binomtest(k, n, alternative="less").proportion_ci(confidence, method="exact")
    lower = binomtest(k, n, alternative="greater").proportion_ci(confidence, method="exact")
    assert clopper_pearson(k, n, confidence=confidence, side="upper") == pytest.approx(
        (upper.low, upper.high), abs=1e-9
    )
    assert clopper_pearson(k, n, confidence=confidence, side="lower") == pytest.approx(
        (lower.low, lower.high), abs=1e-9
    )


def test_clopper_pearson_closed_forms_at_the_edges() -> None:
    # k = 0: the upper bound solves (1 - u)^n = 1 - c; k = n: the lower bound solves l^n = 1 - c.
    assert clopper_pearson(0, 59)[1] == pytest.approx(1 - 0.05 ** (1 / 59))
    assert clopper_pearson(20, 20, side="lower")[0] == pytest.approx(0.05 ** (1 / 20))
    assert clopper_pearson(7, 7) == (0.0, 1.0)
    with pytest.raises(UsageError, match="0 <= k <= n"):
        clopper_pearson(3, 2)


# -- criteria on hand-made evidence -----------------------------------------------------------


def _evidence(
    evaluation: dict[str, Any] | None = None,
    holdout: Holdout | None = None,
    kind: str = "quality",
    tags: dict[str, str] | None = None,
) -> Evidence:
    show = {"name": "m", "version": 1, "tags": tags or {}, "aliases": [], "run_id": "r"}
    return Evidence("m", 1, kind, show, evaluation or {}, holdout)


def _policy(criteria: str, card: str = "intended_use = 'x'") -> LaunchPolicy:
    return LaunchPolicy.from_toml(f"[card]\n{card}\n{criteria}")


def _one(ev: Evidence, policy: LaunchPolicy) -> Any:
    (result,) = evaluate(ev, policy, []).criteria
    return result


def test_operating_point_recall_is_judged_by_its_exact_lower_bound() -> None:
    ev = _evidence(QUALITY_EVALUATION)
    # 30 hits of 100 positives; scipy's one-sided 95% lower bound is about 0.2249.
    low = binomtest(30, 100, alternative="greater").proportion_ci(0.95, method="exact").low
    assert 0.22 < low < 0.23
    ok = _one(ev, _policy("[[criteria]]\nname='r'\nmetric='operating_point_recall'\nmin=0.2"))
    assert (ok.value, ok.passed, ok.op, ok.threshold) == (0.3, True, ">=", 0.2)
    assert ok.interval[0] == pytest.approx(low)
    assert (ok.evidence["k"], ok.evidence["n"]) == (30, 100)
    bad = _one(ev, _policy("[[criteria]]\nname='r'\nmetric='operating_point_recall'\nmin=0.25"))
    assert bad.passed is False
    assert bad.value == 0.3
    # Precision at the operating point: 30 hits of 60 alerts.
    prec = _one(ev, _policy("[[criteria]]\nname='p'\nmetric='operating_point_precision'\nmin=0.4"))
    assert prec.value == 0.5
    assert (prec.evidence["k"], prec.evidence["n"]) == (30, 60)
    expect = binomtest(30, 60, alternative="greater").proportion_ci(0.95, method="exact").low
    assert prec.interval[0] == pytest.approx(expect)
    assert prec.passed is (expect >= 0.4)


def _intent_holdout() -> Holdout:
    # 40 medical utterances, one routed to billing; 100 billing ones, 10 wrong (not counted).
    truth = ["medical"] * 40 + ["billing"] * 100 + ["oos"] * 10
    pred = ["medical"] * 39 + ["billing"] + ["billing"] * 90 + ["oos"] * 10 + ["medical"] * 10
    return Holdout.of(truth, pred, groups={"locale": ["en"] * 75 + ["de"] * 75})


def test_a_sensitive_intent_routed_elsewhere_is_bounded_with_95_percent_confidence() -> None:
    ev = _evidence(holdout=_intent_holdout(), kind="intent")
    rule = "[[criteria]]\nname='med'\nmetric='misrouted_rate'\nlabels=['medical']\nmax={}"
    high = binomtest(1, 40, alternative="less").proportion_ci(0.95, method="exact").high
    assert 0.1 < high < 0.12  # about 0.113
    ok = _one(ev, _policy(rule.format(0.15)))
    assert ok.value == pytest.approx(1 / 40)
    assert ok.passed
    assert ok.interval == pytest.approx((0.0, high))
    assert ok.evidence["routed_to"] == {"billing": 1}
    # The point estimate (2.5%) is under 5%, but 5% is not excluded with 95% confidence.
    assert not _one(ev, _policy(rule.format(0.05))).passed


def test_misrouted_without_labels_counts_every_in_scope_row() -> None:
    ev = _evidence(holdout=_intent_holdout(), kind="intent", tags={"assay.oos_label": "oos"})
    r = _one(ev, _policy("[[criteria]]\nname='all'\nmetric='misrouted_rate'\nmax=0.5"))
    # In scope: 140 rows (medical, billing), 1 + 10 wrong; the 10 oos rows are left out.
    assert (r.evidence["k"], r.evidence["n"]) == (11, 140)


HOLDOUT6 = Holdout.of(
    [1, 0, 1, 1, 0, 0],
    [1, 0, 0, 1, 1, 0],
    y_score=[0.9, 0.1, 0.3, 0.8, 0.6, 0.2],
    groups={"locale": ["a", "a", "a", "b", "b", "b"]},
)


def test_fairness_gap_is_the_hand_computed_difference_between_groups() -> None:
    # Group a: positives rows 0, 2, one caught -> TPR 1/2; group b: positive row 3 caught -> 1.
    # FPR: a has negative row 1, not selected -> 0; b has rows 4 (selected), 5 -> 1/2.
    ev = _evidence(holdout=HOLDOUT6)
    rule = "[[criteria]]\nname='g'\nmetric='fairness_gap'\nattribute='locale'\nmax=0.4\n"
    tpr = _one(ev, _policy(rule))
    assert tpr.value == pytest.approx(0.5)
    assert not tpr.passed
    assert tpr.evidence["groups"] == {"a": 0.5, "b": 1.0}
    assert tpr.evidence["support"] == {"a": 3, "b": 3}
    fpr = _one(ev, _policy(rule + "fairness_metric='false_positive_rate'"))
    assert fpr.value == pytest.approx(0.5)
    sel = _one(ev, _policy(rule.replace("0.4", "0.34") + "fairness_metric='selection_rate'"))
    assert sel.value == pytest.approx(2 / 3 - 1 / 3)
    assert sel.passed


def test_evaluation_metric_is_judged_by_its_logged_interval() -> None:
    ev = _evidence(QUALITY_EVALUATION)
    rule = "[[criteria]]\nname='auc'\nmetric='evaluation_metric'\nkey='metrics.roc_auc'\nmin={}"
    assert _one(ev, _policy(rule.format(0.75))).passed  # ci_low 0.77
    low = _one(ev, _policy(rule.format(0.78)))
    assert not low.passed
    assert low.value == 0.81
    assert low.interval == (0.77, 0.85)
    plain = _evidence({"test": {"in_scope_accuracy": 0.9}}, kind="intent")
    acc = "[[criteria]]\nname='a'\nmetric='evaluation_metric'\nkey='test.in_scope_accuracy'\n"
    assert _one(plain, _policy(acc + "min=0.9")).passed
    assert not _one(plain, _policy(acc + "min=0.91")).passed


def test_a_criterion_without_evidence_fails_and_says_what_to_record() -> None:
    ev = _evidence({})
    for rule in (
        "metric='operating_point_recall'\nmin=0.1",
        "metric='misrouted_rate'\nmax=0.1",
        "metric='fairness_gap'\nattribute='locale'\nmax=0.1",
        "metric='evaluation_metric'\nkey='metrics.nope'\nmin=0.1",
    ):
        r = _one(ev, _policy(f"[[criteria]]\nname='c'\n{rule}"))
        assert r.passed is False
        assert r.value is None
        assert r.evidence["missing"]
    r = _one(ev, _policy("[[criteria]]\nname='c'\nmetric='misrouted_rate'\nmax=0.1"))
    assert "record_holdout" in r.evidence["missing"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[[criteria]]\nname='a'\nmetric='auc'\nmin=1", "metric must be one of"),
        ("[[criteria]]\nname='a'\nmetric='misrouted_rate'\nmin=0\nmax=1", "exactly one of"),
        ("[[criteria]]\nname='a'\nmetric='misrouted_rate'\nmax=1\ncolour=2", "unknown keys"),
        ("[[criteria]]\nname='a'\nmetric='fairness_gap'\nmax=1", "needs attribute"),
        (
            "[[criteria]]\nname='a'\nmetric='misrouted_rate'\nmax=1\n"
            "[[criteria]]\nname='a'\nmetric='misrouted_rate'\nmax=1",
            "unique",
        ),
        ("[[criteria]\n", "not valid TOML"),
    ],
)
def test_policy_errors_say_what_is_wrong(text: str, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        LaunchPolicy.from_toml(text)


def test_default_policies_parse_with_blocking_criteria() -> None:
    for kind, text in DEFAULT_POLICIES.items():
        policy = LaunchPolicy.from_toml(text)
        assert policy.intended_use, kind
        assert any(c.blocking for c in policy.criteria), kind


def test_holdout_columns_must_align() -> None:
    with pytest.raises(UsageError, match="one value per row"):
        Holdout.of([1, 0], [1], groups={"locale": ["a", "b"]})


# -- on a real registry -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Any:
    ws = new_workspace(tmp_path_factory.mktemp("launch"))
    yield ws
    ws.close()


def _download(ws: assay.Workspace, name: str, version: int, path: str) -> str:
    reg = registry(ws)
    run_id = reg.show(f"{name}/{version}")["run_id"]
    return Path(reg.client.download_artifacts(run_id, path)).read_text(encoding="utf-8")


def test_the_check_blocks_until_an_approving_sign_off_and_a_reject_blocks_again(
    workspace: assay.Workspace,
) -> None:
    v = register(workspace, "quality", QUALITY_EVALUATION)
    first = launch_ready(workspace, "quality", v)
    assert not first.failing  # recall 30/100 clears the default 0.2 lower bound
    assert not first.ready
    assert first.reasons() == ["no sign-off yet"]
    sign(workspace, "quality", v, by="ana", decision="approve", notes="reviewed")
    assert launch_ready(workspace, "quality", v).ready
    sign(workspace, "quality", v, by="ben", decision="reject", notes="wait for de-DE")
    later = launch_ready(workspace, "quality", v)
    assert not later.ready
    assert later.reasons()[0].startswith("rejected by ben")
    assert [(s.by, s.decision) for s in signoffs(workspace, "quality", v)] == [
        ("ana", "approve"),
        ("ben", "reject"),
    ]
    rows = workspace.meta.execute(
        "SELECT signed_by, decision, notes FROM launch_signoffs WHERE model = 'quality'"
    )
    assert rows == [("ana", "approve", "reviewed"), ("ben", "reject", "wait for de-DE")]
    tags = registry(workspace).show(f"quality/{v}")["tags"]
    assert tags["assay.launch.decision"] == "reject"
    assert json.loads(tags["assay.launch.signoff"])["by"] == "ben"
    # Long notes are kept whole in the table and cut (still valid JSON) in the tag.
    sign(workspace, "quality", v, by="cy", decision="reject", notes="n" * 9000)
    last = "SELECT signed_by, length(notes) FROM launch_signoffs ORDER BY id DESC LIMIT 1"
    assert workspace.meta.execute(last) == [("cy", 9000)]
    tag = json.loads(registry(workspace).show(f"quality/{v}")["tags"]["assay.launch.signoff"])
    assert tag["by"] == "cy"
    assert tag["notes"] == "n" * 2000
    with pytest.raises(UsageError, match="approve or reject"):
        sign(workspace, "quality", v, by="ana", decision="maybe")
    with pytest.raises(NotFoundError):
        sign(workspace, "quality", 99, by="ana", decision="approve")


def test_a_failing_blocking_criterion_blocks_an_approved_version(
    workspace: assay.Workspace,
) -> None:
    v = register(workspace, "strict", QUALITY_EVALUATION)
    sign(workspace, "strict", v, by="ana", decision="approve")
    strict = _policy("[[criteria]]\nname='r'\nmetric='operating_point_recall'\nmin=0.25")
    check, _ = launch_check(workspace, "strict", v, policy=strict, record=False)
    assert check.approved
    assert not check.ready
    assert check.reasons() == ["criterion r fails"]
    # The workspace's own policy file for the model is read when no policy is given.
    folder = Path(workspace.path) / "launch"
    folder.mkdir(exist_ok=True)
    (folder / "strict.toml").write_text(
        "[[criteria]]\nname='r'\nmetric='operating_point_recall'\nmin=0.25\n"
    )
    assert not launch_ready(workspace, "strict", v).ready
    (folder / "strict.toml").unlink()
    assert launch_ready(workspace, "strict", v).ready


def test_the_card_is_written_next_to_the_model_with_the_evaluations_numbers(
    workspace: assay.Workspace,
) -> None:
    v = register(workspace, "carded", QUALITY_EVALUATION)
    record_holdout(workspace, "carded", v, HOLDOUT6)
    check, _card = launch_check(workspace, "carded", v)
    md = _download(workspace, "carded", v, CARD_MD)
    assert "| roc\\_auc | 0.81 | 0.77 | 0.85 |" in md
    assert "| recall | 0.3 | 0.22 | 0.39 |" in md
    assert "| train | 2026\\-01\\-01 to 2026\\-01\\-03 \\(3 days\\) | 700 |" in md
    assert "| locale | de\\-DE | roc\\_auc | 400 | 0.7 | 0.81 | yes |" in md
    # Fairness by locale from the held-out rows (hand-worked above): TPR 0.5 and 1, gap 0.5.
    assert "| a | 3 | 0.3333 | 0.5 | 0 | 1 |" in md
    assert "| true\\_positive\\_rate | 0.6667 | 0.5 | 1 | 0.5 | 0.5 |" in md
    # Calibration: ECE from the report; reliability bin [0.8, 0.9) holds row 3 (score 0.8, y 1).
    assert "| ece | 0.031 |" in md
    assert "| \\[0.8, 0.9\\) | 1 | 0.8 | 1 |" in md
    assert "slice locale=de\\-DE is worse than overall on roc\\_auc \\(0.7 vs 0.81\\)" in md
    page = _download(workspace, "carded", v, CARD_HTML)
    assert "<td>roc_auc</td><td>0.81</td><td>0.77</td><td>0.85</td>" in page
    recorded = json.loads(_download(workspace, "carded", v, CHECK_JSON))
    assert recorded["ready"] is False
    assert recorded["reasons"] == ["no sign-off yet"]
    assert registry(workspace).show(f"carded/{v}")["tags"]["assay.launch.ready"] == "false"
    assert check.to_dict() == recorded


def test_every_piece_of_text_is_escaped_in_html_and_markdown(
    workspace: assay.Workspace,
) -> None:
    evil = "<script>alert('x')</script>"
    ev = dict(QUALITY_EVALUATION)
    ev["slices"] = [{**QUALITY_EVALUATION["slices"][0], "value": '<img src=x onerror="1">'}]
    v = register(workspace, "evil", ev, tags={"assay.label_definition": evil})
    record_holdout(
        workspace,
        "evil",
        v,
        Holdout.of(["<b>", "a"], ["a", "a"], groups={"locale": ["<i>", "&amp;"]}),
    )
    sign(workspace, "evil", v, by="<u>eve</u>", decision="approve", notes=evil)
    policy = _policy("", card=f"intended_use = {json.dumps(evil)}\nsensitive_attributes=['locale']")
    _, card = launch_check(workspace, "evil", v, policy=policy, record=False)
    page = card.to_html()
    body = page.split("<body>", 1)[1]
    tags_used = {t.split(">")[0].split()[0] for t in body.split("<")[1:]}
    assert tags_used <= {
        "h1",
        "/h1",
        "h2",
        "/h2",
        "p",
        "/p",
        "table",
        "/table",
        "thead",
        "/thead",
        "tbody",
        "/tbody",
        "tr",
        "/tr",
        "th",
        "/th",
        "td",
        "/td",
        "/body",
        "/html",
    }
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;1&quot;&gt;" in page
    assert "&amp;amp;" in page
    assert "http" not in page  # no external asset
    md = card.to_markdown()
    assert "<" not in md.replace("\\<", "")
    assert "\\<u\\>eve\\</u\\>" in md


def test_the_intent_default_policy_reads_the_held_out_predictions(
    workspace: assay.Workspace,
) -> None:
    v = register(
        workspace,
        "intent",
        {"test": {"in_scope_accuracy": 0.9}},
        tags={"assay.kind": "intent", "assay.oos_label": "oos"},
    )
    blocked = launch_ready(workspace, "intent", v)
    assert blocked.kind == "intent"
    assert [c.name for c in blocked.failing] == ["in_scope_misrouted"]
    record_holdout(workspace, "intent", v, _intent_holdout())
    check = launch_ready(workspace, "intent", v)
    (c,) = check.criteria
    expect = binomtest(11, 140, alternative="less").proportion_ci(0.95, method="exact").high
    assert c.passed
    assert c.interval[1] == pytest.approx(expect)
    assert math.isclose(c.value, 11 / 140)


def test_the_card_and_criteria_read_a_real_evaluation_report(workspace: assay.Workspace) -> None:
    """A tiny trained quality model's own report (the shape ``models train`` logs): the card's
    ROC-AUC is scikit-learn's on the test part, the recall criterion's counts are numpy's."""
    from sklearn.metrics import roc_auc_score

    sys.path.insert(0, str(Path(__file__).parents[1] / "models"))
    from quality_data import quality_table

    from assay.models._evaluate import evaluate_model
    from assay.models._train import labels_of, train_quality

    result = train_quality(quality_table(days=30, rows_per_day=120, seed=3), model="logistic")
    test, valid = result.split.test, result.split.valid
    report = evaluate_model(result.model, test, valid, n_boot=0, importance_rows=200)
    v = register(workspace, "trained", json.loads(report.to_json()))
    check, card = launch_check(workspace, "trained", v, record=False)
    y = labels_of(test)
    p = result.model.predict_proba(test)
    threshold = report.operating_point["threshold"]
    (recall,) = [c for c in check.criteria if c.name == "thumbs_down_recall"]
    hits = int(((p >= threshold) & y).sum())
    assert (recall.evidence["k"], recall.evidence["n"]) == (hits, int(y.sum()))
    assert f"| roc\\_auc | {roc_auc_score(y, p):.4g} |" in card.to_markdown()


def test_the_launch_gates_public_names_are_exported() -> None:
    import assay.rollout
    from assay.rollout import _launch

    names = {
        "DEFAULT_POLICIES",
        "Criterion",
        "CriterionResult",
        "Holdout",
        "LaunchCheck",
        "LaunchPolicy",
        "ModelCard",
        "SignOff",
        "clopper_pearson",
        "launch_check",
        "launch_ready",
        "record_holdout",
        "sign",
        "signoffs",
    }
    assert names <= set(assay.rollout.__all__)
    for name in names:
        assert getattr(assay.rollout, name) is getattr(_launch, name)


def test_a_trained_intent_model_carries_its_held_out_predictions_and_unblocks_when_signed(
    tmp_path: Path,
) -> None:
    """Training registers the test part's predictions: the misrouted count equals the one
    counted here from the registered ONNX model's own answers on the same test texts; the
    check blocks for want of a sign-off only, and is ready once approved."""
    from assay.models._intent import predict_intent
    from assay.models._intent_data import clinc150_path, load_intent_data

    ws = new_workspace(tmp_path)
    try:
        data = clinc150_path(small=True)
        outcome = ws.models.train_intent(data, name="intent")
        version = outcome.version.version
        test = load_intent_data(data).test
        answers = predict_intent(f"intent/{version}", test.texts, registry=registry(ws))
        inscope = [(t, a["label"]) for t, a in zip(test.labels, answers, strict=True) if t != "oos"]
        wrong = sum(1 for truth, said in inscope if said != truth)
        before = launch_ready(ws, "intent", version)
        (c,) = before.criteria
        assert (c.evidence["k"], c.evidence["n"]) == (wrong, len(inscope))
        assert c.passed, c.evidence
        assert not before.ready
        assert before.reasons() == ["no sign-off yet"]
        sign(ws, "intent", version, by="reviewer", decision="approve")
        assert launch_ready(ws, "intent", version).ready
    finally:
        ws.close()
