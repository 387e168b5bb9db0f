"""Evaluate a rollout's gates on telemetry and act on the verdict.

:func:`release_slice_counts` counts, per release arm (stable, candidate) and slice value, the
numerators and denominators of every gate metric from the stored events, as Ibis expressions
on the workspace's engine. Counts are summed, never rates averaged: a slice's rate is its
events over its units, and the whole release's rate is the sum over the slices.

:func:`evaluate` runs each gate's sequential test (``compare_rates`` of
:mod:`assay.rollout._sequential`) on the whole release and on every slice value, one decision
per gate row, and combines them into a verdict:

- ``rollback`` if any row says rollback;
- ``hold`` if any gate lacks data: its whole-release row says hold (too little data in an
  arm), or every row of a gate without one does. A slice row that holds does not make the
  verdict hold, else a rollout over many small tenants would never end;
- ``promote`` if every row with a decision says promote and the rollout is at its last step;
- ``continue`` otherwise (the rollout advances once its step has lasted its duration).

The gate's ``alpha`` is split over its rows (Bonferroni within a gate), so a gate wrongly
rolls back with probability at most its ``alpha`` however many slices it has; the whole
rollout at most the sum of its gates' alphas. The whole-release row, the one promotion rests
on, gets half of it (all of it in a gate without slices); the slice rows share the other half
evenly (all of it in a gate without a whole-release row). An even split over every row would
leave the whole-release row, with 28 rows in a default gate, an interval so wide that a
rollout of ordinary traffic never shows non-inferiority (measured in benchmarks/RESULTS.md).

:func:`apply` moves the rollout by a verdict: a roll-back sets the candidate's weight to 0 at
once and opens an incident of kind ``rollout`` holding the evidence.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, is_dataclass
from dataclasses import field as dc_field
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

import ibis

from assay._errors import AssayError
from assay._records import jsonable_row, slice_text
from assay.metrics import _exprs
from assay.rollout._gates import DEFAULT_GATES, Gate, parse_gates
from assay.rollout._plan import Rollout, RolloutStore

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from assay.store import Incident, Workspace

_log = logging.getLogger("assay.rollout")

Verdict = Literal["continue", "promote", "hold", "rollback"]
Arm = Literal["stable", "candidate"]
#: slice field name in a gate -> column of the events.
_SLICE_COLUMNS = {"tenant": "tenant_id", "locale": "locale", "platform": "platform"}
#: The quantile of the stable release's turn latency a slow turn exceeds (latency_p95), and of
#: its session cost a dear session exceeds (cost_per_session).
LATENCY_QUANTILE = 0.95
COST_QUANTILE = 0.5
#: metric -> (numerator, denominator) count names.
_COUNTS = {
    "handoff_rate": ("handoffs", "sessions"),
    "thumbs_down_rate": ("thumbs_down", "feedback"),
    "error_rate": ("errors", "turns"),
    "latency_p95": ("slow_turns", "timed_turns"),
    "cost_per_session": ("dear_sessions", "costed_sessions"),
    "uncited_answer_rate": ("uncited_answers", "answers"),
}


class SequentialResult(Protocol):
    """What a sequential test answers (``assay.rollout._sequential.SequentialResult``)."""

    @property
    def statistic(self) -> str: ...
    @property
    def estimate(self) -> float: ...
    @property
    def low(self) -> float: ...
    @property
    def high(self) -> float: ...
    @property
    def p_value(self) -> float: ...
    @property
    def decision(self) -> str: ...
    @property
    def reason(self) -> str: ...


CompareRates = Callable[..., SequentialResult]


@dataclass(frozen=True)
class GateRow:
    """One gate's decision on one slice: the evidence and the decision.

    ``stable`` and ``candidate`` are ``{"events": k, "n": n, "rate": k / n or None}``;
    ``statistic`` is the test's ``{"name", "estimate", "low", "high", "p_value", "alpha",
    "reason"}``.
    """

    gate: str
    metric: str
    slice: str
    stable: dict[str, Any]
    candidate: dict[str, Any]
    statistic: dict[str, Any]
    decision: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "metric": self.metric,
            "slice": self.slice,
            "stable": self.stable,
            "candidate": self.candidate,
            "statistic": self.statistic,
            "decision": self.decision,
        }


@dataclass(frozen=True)
class Evaluation:
    """A verdict and its gate rows."""

    rollout_id: int
    verdict: Verdict
    gates: tuple[GateRow, ...]
    #: (gate, slice) -> the test's own result, kept for the next evaluation's ``previous``.
    results: Mapping[tuple[str, str], Any] = dc_field(
        default_factory=dict, compare=False, repr=False
    )
    #: The counts the gates judged (rows of :func:`release_slice_counts`), for the
    #: explanation of a roll-back.
    counts: tuple[dict[str, Any], ...] = dc_field(default=(), compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """``{"verdict": ..., "gates": [{"gate", "metric", "slice", "stable", "candidate",
        "statistic", "decision"}, ...]}``."""
        return {"verdict": self.verdict, "gates": [g.as_dict() for g in self.gates]}

    @property
    def failing(self) -> tuple[GateRow, ...]:
        return tuple(g for g in self.gates if g.decision == "rollback")


def _arm(ev: ir.Table, field: str, stable: str, candidate: str) -> ir.StringValue:
    """The arm of each event: ``stable``, ``candidate`` or null (another release)."""
    if field == "flight":
        has_c, has_s = ev.flights.contains(candidate), ev.flights.contains(stable)
    else:
        has_c, has_s = ev[field] == candidate, ev[field] == stable
    none = ibis.null("string")
    return ibis.ifelse(
        has_c.fill_null(False), "candidate", ibis.ifelse(has_s.fill_null(False), "stable", none)
    )


def release_slice_counts(
    events: ir.Table,
    *,
    field: str,
    stable: str,
    candidate: str,
    since: dt.date,
    until: dt.date,
) -> list[dict[str, Any]]:
    """Counts per arm, tenant, locale and platform over the days [since, until].

    Per (arm, tenant_id, locale, platform), from the events of the days of the sessions
    whose events carry the stable or the candidate release in ``field`` (a session with any
    candidate event is the candidate's; for ``flight``, the candidate wins an event in both);
    every event of such a session counts in its arm, events without the field (a handoff or a
    feedback event, say) included; shadow predictions left out:

    - ``sessions``: sessions (per tenant and arm), in the slice of their smallest locale and
      platform (one slice per session, should a session change them); ``handoffs``: those
      with a ``handoff`` event or ``handoff = true``;
    - ``turns``, ``errors``, ``feedback``, ``thumbs_down``: events as in ``docs/metrics.md``;
    - ``timed_turns``, ``slow_turns``: turns with a latency, and those slower than the stable
      arm's :data:`LATENCY_QUANTILE` latency over all its turns (exact, interpolated);
    - ``costed_sessions``, ``dear_sessions``: sessions with a cost, and those costing more
      than the stable arm's :data:`COST_QUANTILE` session cost;
    - ``answers``, ``uncited_answers``: turns with a non-empty ``retrieved_doc_ids``, and
      those citing no document.

    Returns
    -------
    list of dict
        One dict per group with the keys above (counts as int).
    """
    ev = _exprs.events_between(events, tenant=None, start=since, end=until)
    # A shadow prediction (the candidate scoring a request the stable version answered) is no
    # user's outcome: the prediction log marks it ``attributes["shadow"] = "true"``.
    ev = ev.filter(~(ev.attributes.get("shadow").fill_null("") == "true"))
    # A session is in the arm of the release its events carry (the candidate's if any does),
    # and so is each of its events, those that carry no release too: an assistant tags its
    # turns with the model_version or prompt_template, seldom its handoff or feedback events.
    tagged = ev.mutate(arm=_arm(ev, field, stable, candidate))
    tagged = tagged.filter(tagged.arm.notnull())
    arms = tagged.group_by(["tenant_id", "session_id"]).agg(
        candidate_seen=(tagged.arm == "candidate").any()
    )
    arms = arms.select(
        "tenant_id",
        "session_id",
        arm=ibis.ifelse(arms.candidate_seen, "candidate", "stable"),
    )
    ev = ev.inner_join(arms, ["tenant_id", "session_id"])
    turns = ev.filter(ev.event_type == "turn")
    p_latency = turns.filter(turns.arm == "stable").latency_ms.quantile(LATENCY_QUANTILE)
    per_session = ev.group_by(["arm", "tenant_id", "session_id"]).agg(
        locale=ev.locale.min(),
        platform=ev.platform.min(),
        handed=ibis.ifelse(_exprs.hands_off(ev), 1, 0).max(),
        cost=ev.cost_usd.sum(),
    )
    stable_sessions = per_session.filter(per_session.arm == "stable")
    p_cost = stable_sessions.cost.quantile(COST_QUANTILE)
    lat, cost = _scalar(p_latency), _scalar(p_cost)
    keys = ["arm", "tenant_id", "locale", "platform"]
    timed = ev.latency_ms.notnull() & (ev.event_type == "turn")
    slow = timed & (ev.latency_ms > float(lat)) if lat is not None else ibis.literal(False)
    # An answer (docs/metrics.md): a turn with a non-empty retrieved_doc_ids; uncited when its
    # cited_doc_ids is null or empty (a null list first: Spark's size of null may be -1).
    answer = (ev.event_type == "turn") & (ev.retrieved_doc_ids.length() > 0).fill_null(False)
    uncited = answer & (ev.cited_doc_ids.isnull() | (ev.cited_doc_ids.length() <= 0))
    per_event = ev.group_by(keys).agg(
        answers=ev.count(where=answer),
        uncited_answers=ev.count(where=uncited),
        turns=ev.count(where=ev.event_type == "turn"),
        errors=ev.count(where=ev.event_type == "error"),
        feedback=ev.feedback.count(),
        thumbs_down=ev.count(where=_exprs.thumbs_down(ev)),
        timed_turns=ev.count(where=timed),
        slow_turns=ev.count(where=slow.fill_null(False)),
    )
    costed = per_session.cost.notnull()
    dear = costed & (per_session.cost > float(cost)) if cost is not None else ibis.literal(False)
    per_sess = per_session.group_by(keys).agg(
        sessions=per_session.count(),
        handoffs=per_session.handed.sum(),
        costed_sessions=per_session.count(where=costed),
        dear_sessions=per_session.count(where=dear.fill_null(False)),
    )
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for table in (per_event.to_pyarrow(), per_sess.to_pyarrow()):
        for row in table.to_pylist():
            key = tuple(row[k] for k in keys)
            rows.setdefault(key, dict.fromkeys(_ALL_COUNTS, 0) | dict(zip(keys, key, strict=True)))
            rows[key].update({k: int(v or 0) for k, v in row.items() if k not in keys})
    return list(rows.values())


def _scalar(expr: ir.Scalar) -> float | None:
    value = expr.to_pyarrow().as_py()
    return None if value is None or value != value else float(value)


_ALL_COUNTS = tuple(sorted({n for pair in _COUNTS.values() for n in pair}))


def _slice_sums(counts: Sequence[dict[str, Any]], name: str) -> dict[str, dict[str, list[int]]]:
    """slice label -> "arm|count" -> total, over the count rows: every count of every arm
    summed once per slice field, shared by the gates that read it."""
    totals: dict[str, dict[str, list[int]]] = {}
    if name == "all":
        totals["all"] = {arm: [0] * len(_ALL_COUNTS) for arm in ("stable", "candidate")}
    column = _SLICE_COLUMNS.get(name)
    for row in counts:
        label = "all" if column is None else slice_text({name: row[column]})
        arms = totals.get(label)
        if arms is None:
            arms = totals[label] = {arm: [0] * len(_ALL_COUNTS) for arm in ("stable", "candidate")}
        sums = arms[row["arm"]]
        for i, count in enumerate(_ALL_COUNTS):
            sums[i] += row.get(count, 0)
    return totals


def _sums(
    counts: Sequence[dict[str, Any]],
    gate: Gate,
    cache: dict[str, dict[str, dict[str, list[int]]]] | None = None,
) -> list[tuple[str, dict[Arm, tuple[int, int]]]]:
    """(slice label, arm -> (events, n)) for each row of a gate, in the gate's slice order,
    labels sorted within a slice field."""
    num, den = (_ALL_COUNTS.index(c) for c in _COUNTS[gate.metric])
    cache = {} if cache is None else cache
    out: list[tuple[str, dict[Arm, tuple[int, int]]]] = []
    for name in gate.slices:
        if name not in cache:
            cache[name] = _slice_sums(counts, name)
        totals = cache[name]
        for label in sorted(totals):
            arms = totals[label]
            out.append((label, {a: (arms[a][num], arms[a][den]) for a in ("stable", "candidate")}))
    return out


def _finite(value: float) -> float | None:
    """A number for JSON: NaN and infinities (no data, an unbounded interval) as None."""
    return float(value) if math.isfinite(value) else None


def _side(events: int, n: int) -> dict[str, Any]:
    return {"events": events, "n": n, "rate": events / n if n else None}


def _default_compare() -> CompareRates:
    from assay.rollout._sequential import compare_rates

    return compare_rates


def judge(
    counts: Sequence[dict[str, Any]],
    gates: Sequence[Gate],
    *,
    rollout_id: int = 0,
    last_step: bool,
    compare: CompareRates | None = None,
    previous: Mapping[tuple[str, str], Any] | None = None,
) -> Evaluation:
    """The verdict of ``gates`` on counts of :func:`release_slice_counts` (see the module).

    ``previous`` maps (gate, slice) to that row's test result at the last evaluation, passed
    on to the test (``previous=``) to carry its running interval and p-value.
    """
    test = compare or _default_compare()
    rows: list[GateRow] = []
    raw: dict[tuple[str, str], Any] = {}
    silent = False
    cache: dict[str, dict[str, dict[str, list[int]]]] = {}
    for gate in gates:
        sums = _sums(counts, gate, cache)
        # A gate on slices only, without any event in either arm, has no row: no data.
        silent = silent or not sums
        alphas = row_alphas(gate.alpha, [label for label, _ in sums])
        for (label, arms), alpha in zip(sums, alphas, strict=True):
            (sk, sn), (ck, cn) = arms["stable"], arms["candidate"]
            before = (previous or {}).get((gate.name, label))
            carry = {} if before is None else {"previous": before}
            res = test(
                sk,
                sn,
                ck,
                cn,
                alpha=alpha,
                min_sample=gate.min_sample,
                margin=gate.margin,
                direction="higher_is_worse",
                **carry,
            )
            raw[gate.name, label] = res
            rows.append(
                GateRow(
                    gate=gate.name,
                    metric=gate.metric,
                    slice=label,
                    stable=_side(sk, sn),
                    candidate=_side(ck, cn),
                    statistic={
                        "name": res.statistic,
                        "estimate": _finite(res.estimate),
                        "low": _finite(res.low),
                        "high": _finite(res.high),
                        "p_value": _finite(res.p_value),
                        "alpha": alpha,
                        "reason": res.reason,
                    },
                    decision=res.decision,
                )
            )
    verdict = _verdict(rows, last_step)
    if silent and verdict != "rollback":
        verdict = "hold"
    return Evaluation(
        rollout_id=rollout_id,
        verdict=verdict,
        gates=tuple(rows),
        results=raw,
        counts=tuple(counts),
    )


#: The slice columns a roll-back is explained by.
EXPLAIN_DIMENSIONS: tuple[str, ...] = ("tenant_id", "locale", "platform")


def explain_rollback(evaluation: Evaluation, metric: str) -> dict[str, Any] | None:
    """Which slices explain the candidate's ``metric`` against the stable release's.

    ``assay explain``'s method (:func:`assay.anomaly.explain_table`, counts) on the gates'
    own counts, with the release as the time axis: the stable arm is the baseline, the
    candidate arm the point explained; a leaf is one (tenant, locale, platform). Answers
    ``{"metric", "numerator", "denominator", "dimensions", "before", "after", "rows"}``
    (``before``/``after``: the stable/candidate rate; ``rows``: the ranked slices with
    ``root_cause``, ``score``, ``share``, ``before``, ``after``, ``support``), or None for a
    metric that is not a rate of counts (or when an arm has no data).
    """
    from assay.anomaly import explain_table

    if metric not in _COUNTS or not evaluation.counts:
        return None
    num, den = _COUNTS[metric]
    cols: dict[str, list[Any]] = {k: [] for k in ("arm", *EXPLAIN_DIMENSIONS, num, den)}
    for row in evaluation.counts:
        cols["arm"].append(1 if row["arm"] == "candidate" else 0)
        for k in (*EXPLAIN_DIMENSIONS, num, den):
            cols[k].append(row.get(k))
    if set(cols["arm"]) != {0, 1}:
        return None
    import pyarrow as pa

    try:
        found = explain_table(
            pa.table(cols),
            time_col="arm",
            dims=EXPLAIN_DIMENSIONS,
            value=num,
            total=den,
            at=1,
            baseline=1,
            counts=True,
            top=10,
        )
    except AssayError:
        return None
    return {
        "metric": metric,
        "numerator": num,
        "denominator": den,
        "dimensions": list(EXPLAIN_DIMENSIONS),
        "before": _finite(found.before),
        "after": _finite(found.after),
        "rows": [jsonable_row(r) for r in found.to_list()],
    }


def row_alphas(alpha: float, labels: Sequence[str]) -> list[float]:
    """Each row's share of a gate's ``alpha`` (see the module): half to the whole-release row
    ``"all"`` when there are slice rows too, the rest evenly over the slice rows."""
    slices = sum(1 for label in labels if label != "all")
    whole = len(labels) - slices
    if not slices or not whole:
        return [alpha / max(len(labels), 1)] * len(labels)
    return [alpha / 2 if label == "all" else alpha / 2 / slices for label in labels]


def _verdict(rows: Sequence[GateRow], last_step: bool) -> Verdict:
    if any(r.decision == "rollback" for r in rows):
        return "rollback"
    by_gate: dict[str, list[GateRow]] = defaultdict(list)
    for r in rows:
        by_gate[r.gate].append(r)
    if any(_gate_holds(g) for g in by_gate.values()):
        return "hold"
    if last_step and all(_gate_promotes(g) for g in by_gate.values()):
        return "promote"
    return "continue"


def _gate_promotes(rows: Sequence[GateRow]) -> bool:
    """A gate promotes when its whole-release row does (or, without one, every decided row).

    Slices can stop a rollout (any slice's rollback rolls it back) but need not each prove the
    candidate not worse: with 20 tenants and five gates, a hundred small slices almost never
    all decide, and a better candidate would sit at 100% for ever (S1's simulation)."""
    whole = [r for r in rows if r.slice == "all"]
    if whole:
        return all(r.decision == "promote" for r in whole)
    decided = [r for r in rows if r.decision != "hold"]
    return bool(decided) and all(r.decision == "promote" for r in decided)


def _gate_holds(rows: Sequence[GateRow]) -> bool:
    """A gate lacks data when its whole-release row holds (or, without one, every row does).
    A small slice that holds does not: with 2,000 tenants some always will."""
    whole = [r for r in rows if r.slice == "all"]
    return any(r.decision == "hold" for r in (whole or rows)) and (
        bool(whole) or all(r.decision == "hold" for r in rows)
    )


def release_values(rollout: Rollout) -> tuple[str, str]:
    """The stable and candidate values of the rollout's field as telemetry carries them: a
    served model's predictions carry ``model_version = "<model>/<version>"`` (``intent/4``,
    see ``assay.models``' prediction log); a telemetry-only release its own values."""
    if rollout.model is None:
        return rollout.stable, rollout.candidate
    return f"{rollout.model}/{rollout.stable}", f"{rollout.model}/{rollout.candidate}"


def rollout_gates(rollout: Rollout) -> tuple[Gate, ...]:
    """The gates a rollout is judged by: its gates file's, else the defaults."""
    return DEFAULT_GATES if rollout.gates is None else parse_gates(rollout.gates)


def evaluate(
    ws: Workspace,
    rollout_id: int,
    *,
    until: dt.date | None = None,
    compare: CompareRates | None = None,
    events: ir.Table | None = None,
) -> Evaluation:
    """Run a rollout's gates once on the telemetry since it started (nothing is changed)."""
    from assay.metrics import workspace_events

    rollout = RolloutStore(ws.meta).get(rollout_id)
    stable, candidate = release_values(rollout)
    since = dt.datetime.fromisoformat(rollout.created_at).date()
    last = until or dt.datetime.now(dt.UTC).date()
    table = events if events is not None else workspace_events(ws)
    counts = release_slice_counts(
        table,
        field=rollout.field,
        stable=stable,
        candidate=candidate,
        since=since,
        until=max(last, since),
    )
    return judge(
        counts,
        rollout_gates(rollout),
        rollout_id=rollout.id,
        last_step=rollout.state == "canary" and rollout.at_last_step,
        compare=compare,
        # A test passed in (tests) has its own result type: only the real one is carried.
        previous=_load_results(ws, rollout.id) if compare is None else None,
    )


def _load_results(ws: Workspace, rollout_id: int) -> dict[tuple[str, str], Any]:
    """The gate rows' test results stored by the last :func:`apply` of the rollout."""
    from assay.rollout._sequential import SequentialResult

    names = {f.name for f in fields(SequentialResult)}
    out: dict[tuple[str, str], Any] = {}
    rows = ws.meta.execute(
        "SELECT gate, slice, result FROM rollout_gate_results WHERE rollout_id = ?", (rollout_id,)
    )
    for gate, label, text in rows:
        data = json.loads(text)
        if set(data) == names:  # written by another version of the test: start afresh
            out[gate, label] = SequentialResult(**data)
    return out


def _save_results(conn: Any, rollout_id: int, evaluation: Evaluation) -> None:
    """Replace the rollout's stored test results by this evaluation's."""
    conn.execute("DELETE FROM rollout_gate_results WHERE rollout_id = ?", (rollout_id,))
    for (gate, label), res in evaluation.results.items():
        if is_dataclass(res) and not isinstance(res, type):
            conn.execute(
                "INSERT INTO rollout_gate_results (rollout_id, gate, slice, result) "
                "VALUES (?, ?, ?, ?)",
                (rollout_id, gate, label, json.dumps(asdict(res))),
            )


LaunchGate = Callable[[Rollout], Sequence[str]]


def launch_blockers(ws: Workspace, rollout: Rollout) -> list[str]:
    """Why a served rollout's candidate may not take 100% of traffic yet: the reasons of its
    launch check (blocking criteria that fail, no approving sign-off); empty when it may. A
    telemetry-only rollout's release is not in the registry: nothing to check."""
    if rollout.model is None:
        return []
    from assay.rollout._launch import launch_ready

    # launch_ready reads the registry through the full assay.Workspace the CLI and service open.
    check = launch_ready(cast("Any", ws), rollout.model, int(rollout.candidate))
    return list(check.reasons())


def apply(
    ws: Workspace,
    evaluation: Evaluation,
    *,
    store: RolloutStore | None = None,
    launch_gate: LaunchGate | None = None,
) -> Rollout:
    """Move the rollout by a verdict; a final rollout is left as it is.

    - ``rollback``: rolled back at once (weight 0) with an incident of kind ``rollout``;
    - ``promote``: promoted (only reached at the last step);
    - ``continue``: a canary step that has lasted its duration advances;
    - ``hold``: nothing moves;
    - a shadow phase that has lasted its duration advances on any verdict but ``rollback``
      (the candidate answers no user there, so outcome gates can only hold). A paused
      rollout only moves on ``rollback``.

    A move to a 100% step, or a promotion, also needs the candidate's launch check
    (``launch_gate``, by default :func:`launch_blockers`): while it names a reason the
    rollout stays where it is, and the reasons are logged.
    """
    rollouts = store or RolloutStore(ws.meta)

    def launch_blocked(r: Rollout) -> bool:
        reasons = (launch_gate or (lambda x: launch_blockers(ws, x)))(r)
        if reasons:
            _log.warning("rollout %s waits for its launch check: %s", r.id, "; ".join(reasons))
        return bool(reasons)

    r = rollouts.get(evaluation.rollout_id)
    if not r.live:
        return r
    # This look's intervals and p-values are the next one's running ones.
    with ws.meta.transaction() as conn:
        _save_results(conn, r.id, evaluation)
    verdict = evaluation.verdict
    if verdict == "rollback":
        incident = _open_incident(ws, r, evaluation)
        reason = "; ".join(
            f"{g.gate} on {g.slice}: {g.statistic['reason']}" for g in evaluation.failing
        )
        return rollouts.rollback(r.id, f"gates: {reason}", incident_id=incident.id)
    if r.state == "paused":
        return r
    if r.state == "shadow" and rollouts.due(r):
        # The candidate answers no user in shadow: outcome gates can only hold there, so the
        # phase ends on time unless a gate already says rollback.
        return rollouts.advance(r.id, f"shadow phase over (gates say {verdict})")
    if verdict == "promote" and r.state == "canary" and r.at_last_step:
        if launch_blocked(r):
            return r
        return rollouts.promote(r.id, "every gate says promote at the last step")
    if verdict in ("continue", "promote") and rollouts.due(r) and not r.at_last_step:
        if r.steps[r.step_index + 1] >= 100 and launch_blocked(r):
            return r
        return rollouts.advance(r.id, f"gates say {verdict} and the step's time has passed")
    return r


def evaluate_live(
    ws: Workspace,
    *,
    until: dt.date | None = None,
    compare: CompareRates | None = None,
    events: ir.Table | None = None,
    on_error: Callable[[Rollout, Exception], None] | None = None,
) -> list[tuple[Evaluation, Rollout]]:
    """Evaluate every live rollout once and apply its verdict: what the service runs on a
    schedule. Returns each evaluation with the rollout as it is afterwards, oldest first.

    With ``on_error``, a rollout whose evaluation fails is passed to it with the exception
    and left out, and the others are still evaluated (one broken rollout must not keep
    another from being rolled back); without it, the exception propagates."""
    from assay.metrics import workspace_events

    store = RolloutStore(ws.meta)
    table = events if events is not None else workspace_events(ws)
    out = []
    for r in reversed(store.list(live_only=True)):
        try:
            result = evaluate(ws, r.id, until=until, compare=compare, events=table)
            out.append((result, apply(ws, result, store=store)))
        except Exception as exc:
            if on_error is None:
                raise
            on_error(r, exc)
    return out


def _open_incident(ws: Workspace, r: Rollout, evaluation: Evaluation) -> Incident:
    from assay.store import NewIncident

    # The row with the strongest evidence names the incident's metric and slice.
    worst = min(evaluation.failing, key=lambda g: g.statistic["p_value"] or 0.0)
    name, _, value = worst.slice.partition("=")
    today = dt.datetime.now(dt.UTC).date()
    new = NewIncident(
        kind="rollout",
        key=f"rollout|{r.id}",
        tenant_id=value if name == "tenant" else None,
        metric=worst.metric,
        slice={} if worst.slice == "all" else {name: value},
        start=today,
        end=today,
        direction="up",
        severity="high",
        expected=worst.stable["rate"],
        observed=worst.candidate["rate"],
        score=worst.statistic["p_value"],
        details={
            # The release to blame, as release regressions name it (the incident's title).
            "cause": {"field": r.field, "value": r.candidate},
            "rollout_id": r.id,
            "field": r.field,
            "stable": r.stable,
            "candidate": r.candidate,
            "model": r.model,
            "gates": [g.as_dict() for g in evaluation.failing],
            # `explain` on the regressed metric by release and slice.
            "explanation": explain_rollback(evaluation, worst.metric),
        },
    )
    incident, _ = ws.incidents.record(new)
    assert incident is not None  # a rollout's key is new: the finding opens an incident
    return incident


def _error_text(exc: BaseException) -> str:
    """An exception's type, and assay's own message (which never quotes raw text or ids)."""
    reason = " ".join(str(exc).split())[:200] if isinstance(exc, AssayError) else ""
    return f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__


class RolloutSchedule:
    """Evaluates every live rollout every ``interval`` seconds, in a thread of its own: what
    ``assay serve`` runs (the ``rollout_interval_seconds`` setting; 0 turns it off).

    ``open_ws`` opens the workspace handle the evaluations use (opened by :meth:`start`,
    closed by :meth:`stop`), so that they never share a handle with requests. ``run`` is
    one evaluation of every live rollout (by default :func:`evaluate_live`, a rollout whose
    evaluation fails counted in ``failures`` and logged, the others still evaluated).
    ``on_rolled_back`` is called with each rollout an evaluation rolled back (the service
    forgets the model's routing there, so that the rollback takes effect at once). A failed
    evaluation is logged (the exception type and assay's own message, never ids or texts)
    and the next one runs on time.
    """

    def __init__(
        self,
        open_ws: Callable[[], Any],
        interval: float,
        *,
        run: Callable[[Any], list[tuple[Evaluation, Rollout]]] | None = None,
        on_rolled_back: Callable[[Rollout], None] = lambda r: None,
    ) -> None:
        if not interval >= 0:  # also refuses NaN
            from assay._errors import UsageError

            raise UsageError(
                f"the rollout interval must be a number of seconds >= 0 (got {interval!r}); "
                "set rollout_interval_seconds to 0 to turn scheduled rollout evaluations off"
            )
        self.interval = float(interval)
        self._open_ws = open_ws
        self._run = run or (lambda ws: evaluate_live(ws, on_error=self._rollout_failed))
        self._on_rolled_back = on_rolled_back
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._ws: Any = None
        self.runs = 0
        self.failures = 0

    def start(self) -> None:
        """Open the handle and start the thread (nothing when ``interval`` is 0; idempotent)."""
        if self.interval == 0 or self._thread is not None:
            return
        self._ws = self._open_ws()
        self._thread = threading.Thread(
            target=self._loop, name="assay-rollout-schedule", daemon=True
        )
        self._thread.start()

    def run_once(self) -> list[tuple[Evaluation, Rollout]]:
        """One evaluation of every live rollout, its verdicts applied; [] when it failed."""
        try:
            results = self._run(self._ws)
        except Exception as exc:
            self.failures += 1
            _log.warning("scheduled rollout evaluation failed (%s)", _error_text(exc))
            return []
        self.runs += 1
        for _, r in results:
            if r.state == "rolled_back":
                try:
                    self._on_rolled_back(r)
                except Exception as exc:
                    _log.warning("after a rollback, the callback failed (%s)", _error_text(exc))
        return results

    def _rollout_failed(self, r: Rollout, exc: Exception) -> None:
        self.failures += 1
        _log.warning("scheduled evaluation of rollout %s failed (%s)", r.id, _error_text(exc))

    def stop(self, timeout: float | None = 30.0) -> bool:
        """Stop the thread (an evaluation in progress finishes first) and close the handle.

        Returns whether the thread ended within ``timeout`` seconds; if not, the handle is left
        to the thread (a daemon) and a warning is logged. Idempotent.
        """
        self._stopping.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                _log.warning("a rollout evaluation still running at shutdown; left to finish")
                return False
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                ws.close()
            except Exception as exc:
                _log.warning("closing the rollout schedule failed (%s)", _error_text(exc))
        return True

    def _loop(self) -> None:
        while not self._stopping.wait(self.interval):
            self.run_once()


__all__ = [
    "Evaluation",
    "GateRow",
    "RolloutSchedule",
    "SequentialResult",
    "Verdict",
    "apply",
    "evaluate",
    "evaluate_live",
    "judge",
    "launch_blockers",
    "release_slice_counts",
    "release_values",
    "rollout_gates",
]
