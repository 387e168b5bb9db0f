"""The Responsible-AI launch gate: a model card, named blocking criteria and a sign-off.

A registered model version may be promoted to 100% of traffic only when its **launch check**
is ready (:func:`launch_ready`):

- every *blocking* criterion of its launch policy passes, and
- its latest sign-off is ``approve`` (a later ``reject`` blocks it again).

**Policy** (a TOML file; :data:`DEFAULT_POLICIES` for the quality and the intent model, or
``<workspace>/launch/<name>.toml`` when present, or a file given to :func:`launch_check`)::

    [card]
    intended_use = "..."
    sensitive_attributes = ["locale"]
    positive_labels = ["1"]            # the binary view of the fairness metrics
    known_failure_modes = ["..."]

    [[criteria]]
    name = "thumbs_down_recall"
    metric = "operating_point_recall"   # see METRICS
    min = 0.3                           # or max = ...
    confidence = 0.95                   # one-sided exact (Clopper-Pearson) bound
    blocking = true

A proportion criterion (``k`` of ``n``) passes when its one-sided exact bound at
``confidence`` clears the threshold: for ``max = B`` the upper bound is at most ``B`` ("at most
B with 95% confidence"), for ``min = X`` the lower bound is at least ``X``. Its evidence names
``k``, ``n`` and where they came from. A criterion without evidence fails, saying what to record.

**Evidence**: the version's registry entry (:meth:`~assay.models.Registry.show`), the evaluation
report logged at training (``evaluation/evaluation.json``), and optional held-out predictions
recorded with :func:`record_holdout` (``launch/holdout.json``: labels, scores and sensitive
attributes, never text). The card (``model_card/model_card.md`` and ``.html``) and the check
(``launch/check.json``) are written to the version's run as MLflow artifacts; sign-offs go to
the workspace metadata (table ``launch_signoffs``) and to the version's tags
(``assay.launch.decision``, ``assay.launch.signoff``).

References: Mitchell et al., "Model Cards for Model Reporting" (FAT* 2019); Clopper and
Pearson (1934), the exact binomial interval.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import tempfile
import tomllib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from assay._errors import NotFoundError, UsageError
from assay.evaluation import fairness_gaps, group_metrics
from assay.models._holdout import HOLDOUT_JSON, Holdout

if TYPE_CHECKING:
    from assay._api import Workspace
    from assay.models._registry import Registry

Decision = Literal["approve", "reject"]
DECISIONS: tuple[str, ...] = ("approve", "reject")

#: The per-group metrics of :func:`assay.evaluation.group_metrics` a fairness gap may name.
FAIRNESS_METRICS: tuple[str, ...] = (
    "selection_rate",
    "true_positive_rate",
    "false_positive_rate",
    "precision",
)

#: The metrics a criterion may name.
METRICS: tuple[str, ...] = (
    "operating_point_recall",
    "operating_point_precision",
    "misrouted_rate",
    "fairness_gap",
    "evaluation_metric",
)

CARD_MD = "model_card/model_card.md"
CARD_HTML = "model_card/model_card.html"
CHECK_JSON = "launch/check.json"
EVALUATION_JSON = "evaluation/evaluation.json"
TAG_DECISION = "assay.launch.decision"
TAG_SIGNOFF = "assay.launch.signoff"
TAG_READY = "assay.launch.ready"
_MAX_TAG = 4000

QUALITY_POLICY = """
[card]
intended_use = "Score finished assistant sessions for the risk of a thumbs-down, to route the \
riskiest to review and to watch quality per tenant. Not for judging individual users or staff."
sensitive_attributes = ["locale", "platform"]
positive_labels = ["1"]
known_failure_modes = [
  "Scores are calibrated on past traffic; a new tenant, locale or prompt template shifts them.",
  "Sessions without feedback are unlabelled; the label measures those who rate, not everyone.",
]

[[criteria]]
name = "thumbs_down_recall"
metric = "operating_point_recall"
min = 0.2
confidence = 0.95

[[criteria]]
name = "alert_precision"
metric = "operating_point_precision"
min = 0.1
confidence = 0.95
blocking = false

[[criteria]]
name = "tpr_gap_locale"
metric = "fairness_gap"
attribute = "locale"
fairness_metric = "true_positive_rate"
max = 0.2
blocking = false
"""

INTENT_POLICY = """
[card]
intended_use = "Route assistant utterances to an intent, or to out-of-scope (oos) for a \
fallback. Not for decisions about a person; a sensitive intent must reach its handler."
sensitive_attributes = ["locale"]
positive_labels = []
known_failure_modes = [
  "Utterances unlike the training data fall below the threshold and are answered as oos.",
  "Short or ambiguous utterances are confused between neighbouring intents.",
]

[[criteria]]
name = "in_scope_misrouted"
metric = "misrouted_rate"
labels = []
max = 0.25
confidence = 0.95
"""

#: The default policy per model kind (``intent``, else ``quality``).
DEFAULT_POLICIES: dict[str, str] = {"quality": QUALITY_POLICY, "intent": INTENT_POLICY}


# -- policy -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Criterion:
    """One named launch criterion (see the module docstring)."""

    name: str
    metric: str
    min: float | None = None
    max: float | None = None
    confidence: float = 0.95
    blocking: bool = True
    labels: tuple[str, ...] = ()
    attribute: str | None = None
    fairness_metric: str = "true_positive_rate"
    key: str | None = None


@dataclass(frozen=True)
class LaunchPolicy:
    """The card's texts and the criteria of one model."""

    intended_use: str
    criteria: tuple[Criterion, ...]
    sensitive_attributes: tuple[str, ...] = ()
    positive_labels: tuple[str, ...] = ()
    known_failure_modes: tuple[str, ...] = ()

    @classmethod
    def from_toml(cls, text: str, *, source: str = "policy") -> LaunchPolicy:
        """Parse a policy; errors name the file, the criterion and the fix."""
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{source} is not valid TOML ({exc}); fix the line it names") from None
        card = raw.get("card", {})
        criteria = tuple(
            _criterion(c, source, i) for i, c in enumerate(raw.get("criteria", []), start=1)
        )
        names = [c.name for c in criteria]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise UsageError(f"{source}: criterion names must be unique (repeated: {dup})")
        return cls(
            intended_use=str(card.get("intended_use", "")),
            criteria=criteria,
            sensitive_attributes=tuple(map(str, card.get("sensitive_attributes", []))),
            positive_labels=tuple(map(str, card.get("positive_labels", []))),
            known_failure_modes=tuple(map(str, card.get("known_failure_modes", []))),
        )

    @classmethod
    def load(cls, path: str | Path) -> LaunchPolicy:
        p = Path(path)
        if not p.is_file():
            raise NotFoundError(f"no launch policy file at {p}; write one (see docs/rollouts.md)")
        return cls.from_toml(p.read_text(encoding="utf-8"), source=str(p))


_CRITERION_KEYS = {f for f in Criterion.__dataclass_fields__}


def _criterion(raw: Mapping[str, Any], source: str, i: int) -> Criterion:
    where = f"{source}: criterion {i} ({str(raw.get('name', '?'))[:40]!r})"
    unknown = sorted(set(raw) - _CRITERION_KEYS)
    if unknown:
        raise UsageError(f"{where} has unknown keys {unknown}; known: {sorted(_CRITERION_KEYS)}")
    if "name" not in raw or "metric" not in raw:
        raise UsageError(f"{where} needs a name and a metric (one of {', '.join(METRICS)})")
    if raw["metric"] not in METRICS:
        raise UsageError(
            f"{where}: metric must be one of {', '.join(METRICS)} (got {raw['metric']!r})"
        )
    if ("min" in raw) == ("max" in raw):
        raise UsageError(f"{where} needs exactly one of min or max (got {sorted(raw)})")
    confidence = float(raw.get("confidence", 0.95))
    if not 0.5 <= confidence < 1:
        raise UsageError(f"{where}: confidence must be in [0.5, 1) (got {confidence})")
    metric = str(raw["metric"])
    if metric == "fairness_gap":
        if not raw.get("attribute"):
            raise UsageError(f"{where}: a fairness_gap needs attribute = 'locale' (or another)")
        if raw.get("fairness_metric", "true_positive_rate") not in FAIRNESS_METRICS:
            raise UsageError(f"{where}: fairness_metric must be one of {FAIRNESS_METRICS}")
    if metric == "evaluation_metric" and not raw.get("key"):
        raise UsageError(f"{where}: an evaluation_metric needs key = 'metrics.roc_auc' (a path)")
    return Criterion(
        name=str(raw["name"]),
        metric=metric,
        min=None if "min" not in raw else float(raw["min"]),
        max=None if "max" not in raw else float(raw["max"]),
        confidence=confidence,
        blocking=bool(raw.get("blocking", True)),
        labels=tuple(map(str, raw.get("labels", []))),
        attribute=None if raw.get("attribute") is None else str(raw["attribute"]),
        fairness_metric=str(raw.get("fairness_metric", "true_positive_rate")),
        key=None if raw.get("key") is None else str(raw["key"]),
    )


# -- statistics -------------------------------------------------------------------------------


def clopper_pearson(
    k: int, n: int, *, confidence: float = 0.95, side: Literal["upper", "lower"] = "upper"
) -> tuple[float, float]:
    """The one-sided exact (Clopper-Pearson) interval of a proportion ``k / n``.

    ``side="upper"`` gives ``(0, u)`` with ``u`` the ``confidence`` quantile of
    Beta(k + 1, n - k) (1 when ``k = n``); ``side="lower"`` gives ``(l, 1)`` with ``l`` the
    ``1 - confidence`` quantile of Beta(k, n - k + 1) (0 when ``k = 0``). The same interval as
    ``scipy.stats.binomtest(k, n, alternative="less"|"greater").proportion_ci(method="exact")``.

    Examples
    --------
    No failure in 59 trials: the 95% upper bound is just under 5% (the "rule of three").

    >>> round(clopper_pearson(0, 59)[1], 4)
    0.0495
    """
    from scipy.stats import beta

    if n <= 0 or not 0 <= k <= n:
        raise UsageError(f"a proportion needs 0 <= k <= n and n >= 1 (got k={k}, n={n})")
    if side == "upper":
        return 0.0, 1.0 if k == n else float(beta.ppf(confidence, k + 1, n - k))
    return (0.0 if k == 0 else float(beta.ppf(1 - confidence, k, n - k + 1))), 1.0


# -- evidence ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """What the gate reads about one version."""

    name: str
    version: int
    kind: str
    show: Mapping[str, Any]
    evaluation: Mapping[str, Any]
    holdout: Holdout | None = None

    @property
    def tags(self) -> Mapping[str, str]:
        return dict(self.show.get("tags", {}))

    @property
    def oos_label(self) -> str:
        return str(self.tags.get("assay.oos_label", "oos"))


def _artifact_json(reg: Registry, run_id: str, path: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    from assay.models._registry import _quiet

    with tempfile.TemporaryDirectory() as tmp:
        try:
            with _quiet():  # MLflow draws a progress bar on stderr per download
                local = reg.client.download_artifacts(run_id, path, tmp)
        except (MlflowException, OSError):
            return None
        return json.loads(Path(local).read_text(encoding="utf-8"))


def gather(reg: Registry, name: str, version: int) -> Evidence:
    """The evidence of ``name/version`` from the registry."""
    show = reg.show(f"{name}/{version}")
    run_id = str(show.get("run_id") or "")
    evaluation = (_artifact_json(reg, run_id, EVALUATION_JSON) if run_id else None) or {}
    raw_holdout = _artifact_json(reg, run_id, HOLDOUT_JSON) if run_id else None
    kind = "intent" if show["tags"].get("assay.kind") == "intent" else "quality"
    holdout = None if raw_holdout is None else Holdout.from_dict(raw_holdout)
    return Evidence(show["name"], int(show["version"]), kind, show, evaluation, holdout)


# -- criteria ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CriterionResult:
    """One criterion judged: ``value`` against ``threshold`` through the bound of ``interval``
    (the estimate itself when there is no interval)."""

    name: str
    metric: str
    blocking: bool
    op: str
    threshold: float
    value: float | None
    interval: tuple[float, float] | None
    passed: bool
    evidence: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["interval"] = None if self.interval is None else list(self.interval)
        return out


def _proportion(c: Criterion, k: int, n: int, evidence: dict[str, Any]) -> CriterionResult:
    op, threshold = _rule(c)
    if n == 0:
        return _missing(c, f"no rows to count ({evidence.get('source', '')})")
    side: Literal["upper", "lower"] = "lower" if op == ">=" else "upper"
    interval = clopper_pearson(k, n, confidence=c.confidence, side=side)
    bound = interval[0] if op == ">=" else interval[1]
    passed = bound >= threshold if op == ">=" else bound <= threshold
    evidence = {
        **evidence,
        "k": k,
        "n": n,
        "bound": bound,
        "test": f"one-sided exact (Clopper-Pearson) {c.confidence:.0%} bound",
    }
    return _result(c, k / n, interval, passed, evidence)


def _rule(c: Criterion) -> tuple[str, float]:
    """The comparison and the threshold of a criterion (exactly one of min and max is set)."""
    return (">=", float(c.min)) if c.min is not None else ("<=", float(c.max or 0.0))


def _result(
    c: Criterion,
    value: float | None,
    interval: tuple[float, float] | None,
    passed: bool,
    evidence: dict[str, Any],
) -> CriterionResult:
    op, threshold = _rule(c)
    return CriterionResult(
        c.name, c.metric, c.blocking, op, threshold, value, interval, passed, evidence
    )


def _missing(c: Criterion, why: str) -> CriterionResult:
    return _result(c, None, None, False, {"missing": why})


_NO_HOLDOUT = (
    "no held-out predictions recorded; record them with assay.rollout.record_holdout(ws, NAME, "
    "VERSION, Holdout.of(y_true, y_pred, groups=...))"
)


def judge(c: Criterion, ev: Evidence, policy: LaunchPolicy) -> CriterionResult:
    """Judge one criterion on the evidence."""
    if c.metric in ("operating_point_recall", "operating_point_precision"):
        op = ev.evaluation.get("operating_point")
        if not isinstance(op, Mapping) or op.get("hits") is None:
            return _missing(c, f"the evaluation report has no operating point ({EVALUATION_JSON})")
        k = int(op["hits"])
        if c.metric == "operating_point_recall":
            n = int(ev.evaluation.get("settings", {}).get("test_positive", 0))
            what = "hits / test positives"
        else:
            n, what = int(op.get("alerts", 0)), "hits / alerts"
        source = f"{EVALUATION_JSON}: {what} at threshold {op.get('threshold')}"
        return _proportion(c, k, n, {"source": source})
    if c.metric == "misrouted_rate":
        if ev.holdout is None:
            return _missing(c, _NO_HOLDOUT)
        truth = np.asarray(ev.holdout.y_true, dtype=object)
        pred = np.asarray(ev.holdout.y_pred, dtype=object)
        rows = np.isin(truth, list(c.labels)) if c.labels else truth != ev.oos_label
        wrong = rows & (pred != truth)
        routed = Counter(str(p) for p in pred[wrong])
        labels = list(c.labels) or [f"every label but {ev.oos_label}"]
        return _proportion(
            c,
            int(wrong.sum()),
            int(rows.sum()),
            {"source": HOLDOUT_JSON, "labels": labels, "routed_to": dict(routed.most_common(5))},
        )
    if c.metric == "fairness_gap":
        attr = str(c.attribute)
        if ev.holdout is None:
            return _missing(c, _NO_HOLDOUT)
        if attr not in ev.holdout.groups:
            return _missing(c, f"the held-out predictions carry no attribute {attr!r}")
        yt, yp = _binary(ev.holdout, policy.positive_labels)
        groups = list(ev.holdout.groups[attr])
        gaps = fairness_gaps(yt, yp, groups).to_pylist()
        row = next(r for r in gaps if r["metric"] == c.fairness_metric)
        per = group_metrics(yt, yp, groups).to_pylist()
        value = row["difference"]
        op, threshold = _rule(c)
        ok = value is not None and math.isfinite(value)
        passed = ok and (value >= threshold if op == ">=" else value <= threshold)
        evidence = {
            "source": HOLDOUT_JSON,
            "attribute": attr,
            "test": f"max - min of {c.fairness_metric} between groups (no interval)",
            "groups": {str(r["group"]): r[c.fairness_metric] for r in per},
            "support": {str(r["group"]): r["support"] for r in per},
        }
        return _result(c, value if ok else None, None, bool(passed), evidence)
    # evaluation_metric: a number, or {"estimate", "ci_low", "ci_high"}, at a dotted path.
    node: Any = ev.evaluation
    for part in str(c.key).split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    if isinstance(node, Mapping):
        est, low, high = node.get("estimate"), node.get("ci_low"), node.get("ci_high")
    else:
        est, low, high = node, None, None
    if not isinstance(est, int | float) or not math.isfinite(est):
        return _missing(c, f"the evaluation report has no number at {c.key!r}")
    op, threshold = _rule(c)
    interval = (float(low), float(high)) if low is not None and high is not None else None
    bound = float(est) if interval is None else (interval[0] if op == ">=" else interval[1])
    passed = bound >= threshold if op == ">=" else bound <= threshold
    test = "the estimate (no interval logged)" if interval is None else "the logged interval"
    found = {"source": f"{EVALUATION_JSON}: {c.key}", "bound": bound, "test": test}
    return _result(c, float(est), interval, passed, found)


def _binary(h: Holdout, positive: Sequence[str]) -> tuple[list[bool], list[bool]]:
    """The binary view for fairness: a row is positive when its label is one of ``positive``
    (``"1"`` when none is named)."""
    pos = set(positive) or {"1"}
    return [t in pos for t in h.y_true], [p in pos for p in h.y_pred]


# -- sign-off ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignOff:
    """A reviewer's decision on one version."""

    model: str
    version: int
    by: str
    decision: str
    notes: str
    signed_at: str


def _check_decision(decision: str) -> str:
    if decision not in DECISIONS:
        raise UsageError(f"decision must be approve or reject (got {str(decision)[:40]!r})")
    return decision


def sign(
    ws: Workspace,
    name: str,
    version: int,
    *,
    by: str,
    decision: str,
    notes: str = "",
    now: dt.datetime | None = None,
) -> SignOff:
    """Record a sign-off of ``name/version`` in the workspace metadata and as version tags."""
    from assay.models._lifecycle import registry

    _check_decision(decision)
    who = by.strip()
    if not who or len(who) > 200:
        raise UsageError("--by must name the reviewer (1 to 200 characters)")
    reg = registry(ws)
    ref = reg.resolve(f"{name}/{int(version)}")
    when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="seconds")
    s = SignOff(ref.name, ref.version, who, decision, notes, when)
    with ws.lock.hold(ws.settings.lock_timeout_seconds):
        ws.meta.execute(
            "INSERT INTO launch_signoffs (model, version, signed_by, decision, notes, signed_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (s.model, s.version, s.by, s.decision, s.notes, s.signed_at),
        )
        client = reg.client
        client.set_model_version_tag(s.model, str(s.version), TAG_DECISION, s.decision)
        # Long notes are cut in the tag (MLflow caps tag values), never in the metadata table,
        # so the tag stays valid JSON.
        brief = {**asdict(s), "notes": s.notes[: _MAX_TAG // 2]}
        tag = json.dumps(brief, sort_keys=True, ensure_ascii=False)
        client.set_model_version_tag(s.model, str(s.version), TAG_SIGNOFF, tag)
    return s


def signoffs(ws: Workspace, name: str, version: int) -> list[SignOff]:
    """Every sign-off of ``name/version``, oldest first."""
    rows = ws.meta.execute(
        "SELECT model, version, signed_by, decision, notes, signed_at FROM launch_signoffs "
        "WHERE model = ? AND version = ? ORDER BY id",
        (name, int(version)),
    )
    return [SignOff(r[0], int(r[1]), r[2], r[3], r[4], r[5]) for r in rows]


# -- the check --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LaunchCheck:
    """The launch checklist of one version."""

    name: str
    version: int
    kind: str
    criteria: tuple[CriterionResult, ...]
    signoffs: tuple[SignOff, ...]

    @property
    def signoff(self) -> SignOff | None:
        """The latest sign-off (the one that counts)."""
        return self.signoffs[-1] if self.signoffs else None

    @property
    def failing(self) -> list[CriterionResult]:
        """The blocking criteria that fail."""
        return [c for c in self.criteria if c.blocking and not c.passed]

    @property
    def approved(self) -> bool:
        return self.signoff is not None and self.signoff.decision == "approve"

    @property
    def ready(self) -> bool:
        """True when no blocking criterion fails and the latest sign-off approves."""
        return not self.failing and self.approved

    def reasons(self) -> list[str]:
        """Why the version is blocked (empty when ready)."""
        out = [f"criterion {c.name} fails" for c in self.failing]
        if self.signoff is None:
            out.append("no sign-off yet")
        elif not self.approved:
            out.append(f"rejected by {self.signoff.by} at {self.signoff.signed_at}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "version": self.version,
            "kind": self.kind,
            "ready": self.ready,
            "reasons": self.reasons(),
            "criteria": [c.to_dict() for c in self.criteria],
            "signoff": None if self.signoff is None else asdict(self.signoff),
            "signoffs": [asdict(s) for s in self.signoffs],
        }

    def to_text(self) -> str:
        """The checklist as plain lines."""
        lines = [f"launch check {self.name}/{self.version} ({self.kind})"]
        for c in self.criteria:
            mark = "PASS" if c.passed else ("FAIL" if c.blocking else "warn")
            lines.append(f"[{mark}] {c.name}: {_describe(c)}")
        s = self.signoff
        if s is None:
            lines.append("[FAIL] sign-off: none; run `assay launch sign NAME VERSION --by ...`")
        else:
            mark = "PASS" if s.decision == "approve" else "FAIL"
            lines.append(f"[{mark}] sign-off: {s.decision} by {s.by} at {s.signed_at}")
        state = "ready" if self.ready else "blocked: " + "; ".join(self.reasons())
        lines.append(state)
        return "\n".join(lines)


def _num(x: Any) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _describe(c: CriterionResult) -> str:
    kind = "blocking" if c.blocking else "advisory"
    if c.value is None:
        return f"{c.metric} {c.op} {_num(c.threshold)} ({kind}): {c.evidence.get('missing')}"
    text = f"{c.metric} = {_num(c.value)}"
    if "k" in c.evidence:
        text += f" ({c.evidence['k']}/{c.evidence['n']})"
    if c.interval is not None:
        text += f", interval [{_num(c.interval[0])}, {_num(c.interval[1])}]"
    return text + f", needs {c.op} {_num(c.threshold)} ({kind})"


def policy_for(ws: Workspace, name: str, kind: str) -> LaunchPolicy:
    """``<workspace>/launch/<name>.toml`` when present, else the default policy of ``kind``."""
    path = Path(ws.path) / "launch" / f"{name}.toml"
    if path.is_file():
        return LaunchPolicy.load(path)
    return LaunchPolicy.from_toml(DEFAULT_POLICIES[kind], source=f"default {kind} policy")


def evaluate(ev: Evidence, policy: LaunchPolicy, signed: Sequence[SignOff]) -> LaunchCheck:
    """The launch check of the evidence under ``policy`` (pure: no storage)."""
    results = tuple(judge(c, ev, policy) for c in policy.criteria)
    return LaunchCheck(ev.name, ev.version, ev.kind, results, tuple(signed))


def launch_check(
    ws: Workspace,
    name: str,
    version: int,
    *,
    policy: LaunchPolicy | None = None,
    record: bool = True,
) -> tuple[LaunchCheck, ModelCard]:
    """Judge ``name/version`` and build its card; with ``record``, write the card (Markdown,
    HTML) and the check (JSON) next to the model and tag the version ``assay.launch.ready``."""
    from assay.models._lifecycle import registry

    reg = registry(ws)
    ev = gather(reg, name, version)
    pol = policy or policy_for(ws, ev.name, ev.kind)
    check = evaluate(ev, pol, signoffs(ws, ev.name, ev.version))
    card = build_card(ev, pol, check)
    if record:
        run_id = str(ev.show.get("run_id") or "")
        if not run_id:
            raise NotFoundError(f"{ev.name}/{ev.version} has no run to hold its model card")
        with ws.lock.hold(ws.settings.lock_timeout_seconds):
            client = reg.client
            client.log_text(run_id, card.to_markdown(), CARD_MD)
            client.log_text(run_id, card.to_html(), CARD_HTML)
            client.log_text(run_id, json.dumps(check.to_dict(), indent=2, default=str), CHECK_JSON)
            client.set_model_version_tag(
                ev.name, str(ev.version), TAG_READY, "true" if check.ready else "false"
            )
    return check, card


def launch_ready(ws: Workspace, name: str, version: int) -> LaunchCheck:
    """The launch check the rollout engine reads before promoting to 100% (nothing written):
    promote only when ``.ready``."""
    return launch_check(ws, name, version, record=False)[0]


def record_holdout(ws: Workspace, name: str, version: int, holdout: Holdout) -> None:
    """Store held-out predictions next to the model (``launch/holdout.json``): labels, scores
    and sensitive attributes only, never text."""
    from assay.models._lifecycle import registry

    reg = registry(ws)
    show = reg.show(f"{name}/{int(version)}")
    if not show.get("run_id"):
        raise NotFoundError(f"{name}/{version} has no run to hold its predictions")
    with ws.lock.hold(ws.settings.lock_timeout_seconds):
        reg.client.log_text(str(show["run_id"]), json.dumps(holdout.to_dict()), HOLDOUT_JSON)


# -- the model card ---------------------------------------------------------------------------


_Table = tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]


@dataclass(frozen=True)
class Section:
    """A card section: a title, paragraphs, and tables (header, rows)."""

    title: str
    paragraphs: tuple[str, ...] = ()
    tables: tuple[_Table, ...] = ()


@dataclass(frozen=True)
class ModelCard:
    """A model card: sections rendered as Markdown or self-contained HTML."""

    title: str
    sections: tuple[Section, ...]

    def to_markdown(self) -> str:
        out = [f"# {_md(self.title)}", ""]
        for s in self.sections:
            out += [f"## {_md(s.title)}", ""]
            for p in s.paragraphs:
                out += [_md(p), ""]
            for header, rows in s.tables:
                out.append("| " + " | ".join(_md(h) for h in header) + " |")
                out.append("|" + "---|" * len(header))
                out += ["| " + " | ".join(_md(v) for v in r) + " |" for r in rows]
                out.append("")
        return "\n".join(out)

    def to_html(self) -> str:
        e = html.escape
        body = [f"<h1>{e(self.title)}</h1>"]
        for s in self.sections:
            body.append(f"<h2>{e(s.title)}</h2>")
            body += [f"<p>{e(p)}</p>" for p in s.paragraphs]
            for header, rows in s.tables:
                head = "".join(f"<th>{e(h)}</th>" for h in header)
                trs = "".join(
                    "<tr>" + "".join(f"<td>{e(v)}</td>" for v in r) + "</tr>" for r in rows
                )
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>")
        style = (
            "body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;color:#222}"
            "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
            "padding:.2em .5em;text-align:left}th{background:#f3f3f3}"
        )
        return (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{e(self.title)}</title><style>{style}</style></head>\n<body>\n"
            + "\n".join(body)
            + "\n</body></html>\n"
        )


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_{}[]<>()#+-!|~"} | {"\n": " ", "\r": " "})


def _md(value: Any) -> str:
    """Text safe in Markdown: every markup character escaped (so no HTML, link or table cell
    boundary can come from the data)."""
    return str(value).translate(_MD_SPECIAL)


def _rows(rows: Sequence[Sequence[Any]]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(_num(v) for v in r) for r in rows)


def build_card(ev: Evidence, policy: LaunchPolicy, check: LaunchCheck) -> ModelCard:
    """The model card of the evidence (see the module docstring for its sections)."""
    tags, evaluation = ev.tags, ev.evaluation
    sections: list[Section] = []
    details = [
        ("model", f"{ev.name}/{ev.version}"),
        ("kind", tags.get("assay.kind", ev.kind)),
        ("label", tags.get("assay.label", "")),
        ("label definition", tags.get("assay.label_definition", "")),
        ("aliases", ", ".join(ev.show.get("aliases", [])) or "none"),
        ("registered", str(ev.show.get("created", ""))),
        ("data fingerprint", tags.get("assay.data_fingerprint", "")),
    ]
    sections.append(Section("Model details", tables=((("field", "value"), _rows(details)),)))
    sections.append(Section("Intended use", (policy.intended_use or "not stated",)))
    window = evaluation.get("window") or _json_tag(tags.get("assay.window"))
    if isinstance(window, Mapping):
        wrows = []
        for part in ("train", "valid", "test"):
            days = list(window.get(f"{part}_days") or [])
            rows = (window.get("rows") or {}).get(part)
            span = f"{days[0]} to {days[-1]} ({len(days)} days)" if days else "n/a"
            wrows.append((part, span, rows))
        windows = Section("Data windows", tables=((("part", "days", "rows"), _rows(wrows)),))
    else:
        windows = Section("Data windows", ("the registry holds no data window for this version",))
    sections.append(windows)
    sections.append(_evaluation_section(evaluation))
    sections.append(_slices_section(ev, policy))
    sections.append(_fairness_section(ev, policy))
    sections.append(_calibration_section(ev))
    sections.append(_failures_section(ev, policy, check))
    crit = tuple(
        (
            c.name,
            "blocking" if c.blocking else "advisory",
            _describe(c),
            "pass" if c.passed else "fail",
        )
        for c in check.criteria
    )
    sign_rows = tuple((s.signed_at, s.by, s.decision, s.notes) for s in check.signoffs)
    state = "ready" if check.ready else "blocked: " + "; ".join(check.reasons())
    sections.append(
        Section(
            "Launch criteria and sign-off",
            (state,),
            (
                (("criterion", "kind", "result", "status"), crit),
                (("when", "by", "decision", "notes"), sign_rows),
            ),
        )
    )
    return ModelCard(f"Model card: {ev.name}/{ev.version}", tuple(sections))


def _json_tag(text: str | None) -> Any:
    try:
        return None if text is None else json.loads(text)
    except ValueError:
        return None


def _evaluation_section(evaluation: Mapping[str, Any]) -> Section:
    rows: list[tuple[Any, ...]] = []
    metrics = evaluation.get("metrics")
    if isinstance(metrics, Mapping):
        for name, v in sorted(metrics.items()):
            if isinstance(v, Mapping):
                rows.append((name, v.get("estimate"), v.get("ci_low"), v.get("ci_high")))
    for part in ("valid", "test"):
        values = evaluation.get(part)
        if isinstance(values, Mapping):
            for name, v in sorted(values.items()):
                if isinstance(v, int | float):
                    rows.append((f"{part} {name}", float(v), None, None))
    tables: list[_Table] = [(("metric", "estimate", "ci low", "ci high"), _rows(rows))]
    op = evaluation.get("operating_point")
    if isinstance(op, Mapping):
        op_rows = [
            (key, op.get(key), *(op.get(f"{key}_ci") or [None, None]))
            for key in ("alert_rate", "precision", "recall")
        ]
        tables.append((("at the operating point", "value", "ci low", "ci high"), _rows(op_rows)))
    text = () if rows else ("the evaluation report holds no metrics",)
    return Section("Evaluation", text, tuple(tables))


def _slices_section(ev: Evidence, policy: LaunchPolicy) -> Section:
    slices = ev.evaluation.get("slices")
    tables: list[_Table] = []
    if isinstance(slices, list) and slices:
        rows = [
            (
                r.get("feature"),
                r.get("value"),
                r.get("metric"),
                r.get("support"),
                r.get("estimate"),
                r.get("overall"),
                "yes" if r.get("flagged") else "",
            )
            for r in slices
        ]
        header = ("feature", "value", "metric", "support", "estimate", "overall", "flagged")
        tables.append((header, _rows(rows)))
    if ev.holdout is not None:
        truth = np.asarray(ev.holdout.y_true, dtype=object)
        right = truth == np.asarray(ev.holdout.y_pred, dtype=object)
        acc_rows = []
        for attr, values in sorted(ev.holdout.groups.items()):
            g = np.asarray(values, dtype=object)
            for value in sorted(set(values)):
                m = g == value
                acc_rows.append((attr, value, int(m.sum()), float(right[m].mean())))
        tables.append((("attribute", "value", "rows", "accuracy (held out)"), _rows(acc_rows)))
    text = () if tables else ("no slice report and no held-out predictions recorded",)
    return Section("Evaluation by slice", text, tuple(tables))


def _fairness_section(ev: Evidence, policy: LaunchPolicy) -> Section:
    if ev.holdout is None:
        return Section("Fairness", ("not computed: " + _NO_HOLDOUT,))
    attrs = [a for a in policy.sensitive_attributes if a in ev.holdout.groups]
    if not attrs:
        return Section(
            "Fairness",
            (
                "not computed: the held-out predictions carry none of the sensitive attributes "
                f"({', '.join(policy.sensitive_attributes) or 'none named'})",
            ),
        )
    yt, yp = _binary(ev.holdout, policy.positive_labels)
    pos = ", ".join(policy.positive_labels) or "1"
    tables: list[_Table] = []
    for attr in attrs:
        groups = list(ev.holdout.groups[attr])
        per = group_metrics(yt, yp, groups).to_pylist()
        tables.append(
            (
                (attr, "support", *FAIRNESS_METRICS),
                _rows([(r["group"], r["support"], *(r[m] for m in FAIRNESS_METRICS)) for r in per]),
            )
        )
        gaps = fairness_gaps(yt, yp, groups).to_pylist()
        tables.append(
            (
                (f"gap by {attr}", "overall", "group min", "group max", "difference", "ratio"),
                _rows(
                    [
                        (
                            g["metric"],
                            g["overall"],
                            g["group_min"],
                            g["group_max"],
                            g["difference"],
                            g["ratio"],
                        )
                        for g in gaps
                    ]
                ),
            )
        )
    text = (
        f"Binary view: positive = label in {{{pos}}}. Gaps between groups as Fairlearn's "
        "MetricFrame difference() and ratio() (assay.evaluation.fairness_gaps).",
    )
    return Section("Fairness", text, tuple(tables))


def _calibration_section(ev: Evidence) -> Section:
    metrics = ev.evaluation.get("metrics") or {}
    rows = [
        (name, (metrics.get(name) or {}).get("estimate"))
        for name in ("ece", "brier_score")
        if isinstance(metrics.get(name), Mapping)
    ]
    tables: list[_Table] = []
    if rows:
        tables.append((("on test", "value"), _rows(rows)))
    h = ev.holdout
    if h is not None and h.y_score is not None:
        score = np.asarray(h.y_score, dtype=np.float64)
        y, _ = _binary(h, ())
        yy = np.asarray(y, dtype=np.float64)
        bins = np.minimum((score * 10).astype(np.int64), 9)
        rel = []
        for b in range(10):
            m = bins == b
            if m.any():
                rel.append(
                    (
                        f"[{b / 10:.1f}, {(b + 1) / 10:.1f})",
                        int(m.sum()),
                        float(score[m].mean()),
                        float(yy[m].mean()),
                    )
                )
        tables.append((("score bin", "rows", "mean score", "observed rate"), _rows(rel)))
    text = () if tables else ("no calibration figures recorded for this version",)
    return Section("Calibration", text, tuple(tables))


def _failures_section(ev: Evidence, policy: LaunchPolicy, check: LaunchCheck) -> Section:
    items = list(policy.known_failure_modes)
    for r in ev.evaluation.get("slices_flagged") or []:
        items.append(
            f"slice {r.get('feature')}={r.get('value')} is worse than overall on "
            f"{r.get('metric')} ({_num(r.get('estimate'))} vs {_num(r.get('overall'))})"
        )
    leak = _json_tag(ev.tags.get("assay.leakage_flagged"))
    if leak:
        items.append(f"features flagged for possible leakage: {', '.join(map(str, leak))}")
    if ev.holdout is not None:
        pairs = Counter(
            (t, p) for t, p in zip(ev.holdout.y_true, ev.holdout.y_pred, strict=True) if t != p
        )
        for (t, p), n in pairs.most_common(3):
            items.append(f"{t} predicted as {p}: {n} held-out rows")
    items += [f"launch criterion {c.name} fails" for c in check.criteria if not c.passed]
    return Section("Known failure modes", tuple(items) or ("none recorded",))
