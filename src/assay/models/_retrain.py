"""The daily retrain: rebuild, train, compare with the champion on the same days, gate, record.

:func:`retrain` (``assay models retrain quality --sla 2h``) runs, in order (each a timed stage;
**champion** first loads the current champion's ONNX export, when there is one):

1. **dataset**: the training set of the latest window (``days`` days ending on the last stored
   day), with the champion's opted-in attributes, so both models can score it;
2. **train**: :func:`~assay.models._lifecycle.train_on_table`: split by time, leakage probe,
   fit, calibrate, export to ONNX, evaluate, register a new version (a candidate, no alias);
3. **compare**: the candidate (native scores) and the champion (its ONNX export, what
   inference runs) scored on the candidate's **test days**, the most recent held-out days;
   PR-AUC with its bootstrap interval and the calibration error of each, computed the same way;
4. **gate** (:func:`gate`): the candidate passes when no feature was flagged by the leakage
   probe, its calibration error is at most ``max_ece``, and (with a champion) its PR-AUC is
   not below the lower end of the champion's interval. A passing candidate becomes
   ``challenger``; with no champion yet it becomes ``champion``. A rejected candidate stays a
   registered version without an alias, tagged with the reasons.

Each run is a row of the workspace's ``job_runs`` table (kind ``models.retrain``) with its
stages and their durations, the outcome, the versions and the gate's figures
(:func:`runs` lists them). A rejected candidate, a leakage flag or a run longer than its SLA
opens an incident of kind ``model`` (one per model and cause, merged across adjacent days as
every incident is).

Durations come from ``clock`` (``time.monotonic`` by default), so tests can inject one.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from assay._errors import UsageError
from assay.evaluation import expected_calibration_error
from assay.models._dataset import LABELS, Label
from assay.models._evaluate import _interval
from assay.models._leakage import LeakageError, time_split
from assay.models._onnx import input_names, onnx_scores, session
from assay.models._registry import TAG_PREFIX, Registry, VersionRef
from assay.models._train import FloatArray, ModelKind, labels_of
from assay.store._incidents import IncidentStore, NewIncident
from assay.store._meta import MetaStore

if TYPE_CHECKING:
    from assay._api import Workspace

#: The ``job_runs`` kind of a retrain run.
JOB_KIND = "models.retrain"
#: Largest calibration error (ECE, 10 bins) a candidate may have on the test days.
DEFAULT_MAX_ECE = 0.05
#: Default SLA of one run, in seconds.
DEFAULT_SLA_SECONDS = 2 * 3600.0
#: Default window of sessions, in days.
DEFAULT_DAYS = 60

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds of a duration such as ``2h``, ``90m``, ``45s`` or ``3600``.

    >>> parse_duration("2h"), parse_duration("90m"), parse_duration("45")
    (7200.0, 5400.0, 45.0)
    """
    found = _DURATION.match(str(text))
    if not found or float(found.group(1)) <= 0:
        raise UsageError(
            f"a duration is a positive number with an optional unit s, m, h or d (got "
            f"{str(text)[:40]!r}); e.g. 2h, 90m or 3600"
        )
    return float(found.group(1)) * _UNIT_SECONDS[found.group(2)]


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict on a candidate.

    Attributes
    ----------
    passed : whether the candidate may be served next to (or, first, as) the champion.
    reasons : why it was rejected (empty when it passed).
    candidate, champion : per model, ``average_precision`` (estimate, ci_low, ci_high) and
        ``ece`` on the same test days; ``champion`` is None without one.
    max_ece : the calibration bound used.
    """

    passed: bool
    reasons: list[str]
    candidate: dict[str, Any]
    champion: dict[str, Any] | None
    max_ece: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reasons": list(self.reasons),
            "candidate": self.candidate,
            "champion": self.champion,
            "max_ece": self.max_ece,
        }


def comparison_metrics(
    y: npt.NDArray[np.bool_], p: FloatArray, *, n_boot: int = 200, seed: int = 0
) -> dict[str, Any]:
    """PR-AUC (average precision) with its bootstrap interval and the calibration error (ECE,
    10 bins) of scores ``p`` for labels ``y``: what the gate compares."""
    ap = _interval("average_precision", y, p, n_boot, seed) if y.any() else None
    ece = expected_calibration_error(y, p, n_bins=10) if y.size else None
    return {
        "average_precision": ap,
        "ece": None if ece is None else float(ece),
        "rows": int(y.size),
        "positives": int(y.sum()),
    }


def gate(
    candidate: dict[str, Any],
    champion: dict[str, Any] | None,
    *,
    leakage_flagged: Sequence[str] = (),
    max_ece: float = DEFAULT_MAX_ECE,
) -> GateResult:
    """The gate on :func:`comparison_metrics` of the candidate and the champion.

    Rejects when a feature was flagged by the leakage probe, when the candidate's ECE is
    missing or above ``max_ece``, or (with a champion whose PR-AUC has an interval) when the
    candidate's PR-AUC is below the lower end of the champion's interval.

    >>> cand = {"average_precision": {"estimate": 0.30, "ci_low": 0.2, "ci_high": 0.4},
    ...         "ece": 0.01}
    >>> champ = {"average_precision": {"estimate": 0.40, "ci_low": 0.32, "ci_high": 0.5},
    ...          "ece": 0.01}
    >>> gate(cand, champ).reasons
    ["PR-AUC 0.3000 below the champion's interval (0.3200 to 0.5000) on the same test days"]
    """
    reasons: list[str] = []
    if leakage_flagged:
        reasons.append(f"leakage probe flagged {', '.join(leakage_flagged)}")
    ece = candidate.get("ece")
    if ece is None or not ece <= max_ece:
        shown = "none" if ece is None else f"{ece:.4f}"
        reasons.append(f"calibration error {shown} above the bound {max_ece:g}")
    ap = (candidate.get("average_precision") or {}).get("estimate")
    if ap is None:
        reasons.append("no PR-AUC: the test days have no positive session")
    if champion is not None and ap is not None:
        champ_ap = champion.get("average_precision") or {}
        low = champ_ap.get("ci_low")
        if low is None:
            low = champ_ap.get("estimate")
        if low is not None and ap < low:
            high = champ_ap.get("ci_high")
            reasons.append(
                f"PR-AUC {ap:.4f} below the champion's interval ({low:.4f} to "
                f"{'?' if high is None else f'{high:.4f}'}) on the same test days"
            )
    return GateResult(not reasons, reasons, candidate, champion, max_ece)


@dataclass
class _Stages:
    clock: Callable[[], float]
    started: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    _open: tuple[str, float] | None = None

    def enter(self, name: str) -> None:
        now = self.clock()
        self.close(now)
        self._open = (name, now)

    def close(self, now: float | None = None) -> None:
        if self._open is not None:
            now = self.clock() if now is None else now
            name, began = self._open
            self.rows.append({"stage": name, "seconds": round(now - began, 3)})
            self._open = None

    def total(self) -> float:
        return self.clock() - self.started


@dataclass(frozen=True)
class RetrainOutcome:
    """What one :func:`retrain` run did (also stored as its ``job_runs`` row).

    Attributes
    ----------
    run_id : its ``job_runs`` id.
    outcome : ``challenger``, ``champion`` (the first passing candidate), ``rejected``
        (gate or leakage) or ``failed`` (an error before the gate).
    name : the registered model name.
    candidate, champion : the versions (``NAME/VERSION``) or None.
    gate : the gate's figures, or None when it did not run.
    stages : each stage's name and seconds.
    seconds, sla_seconds, sla_exceeded : the run's duration against its SLA.
    incidents : ids of the incidents opened or extended.
    error : what failed, for ``failed`` and leakage.
    """

    run_id: int
    outcome: str
    name: str
    candidate: str | None
    champion: str | None
    gate: dict[str, Any] | None
    stages: list[dict[str, Any]]
    seconds: float
    sla_seconds: float
    sla_exceeded: bool
    incidents: list[int]
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "outcome": self.outcome,
            "name": self.name,
            "candidate": self.candidate,
            "champion": self.champion,
            "gate": self.gate,
            "stages": self.stages,
            "seconds": round(self.seconds, 3),
            "sla_seconds": self.sla_seconds,
            "sla_exceeded": self.sla_exceeded,
            "incidents": self.incidents,
            "error": self.error,
        }


def _champion(reg: Registry, name: str) -> VersionRef | None:
    from assay._errors import NotFoundError

    try:
        return reg.resolve(f"{name}@champion")
    except NotFoundError:
        return None


def champion_attributes(reg: Registry, ref: VersionRef) -> tuple[list[str], Any]:
    """The attributes a registered version's ONNX graph takes, and its inference session."""
    _, raw = reg.load_onnx(f"{ref.name}/{ref.version}")
    sess = session(raw)
    _, categorical = input_names(sess)
    return [c[len("attr_") :] for c in categorical if c.startswith("attr_")], sess


def _model_incident(
    name: str,
    cause: str,
    day: dt.date,
    *,
    observed: float | None,
    expected: float | None,
    details: dict[str, Any],
) -> NewIncident:
    return NewIncident(
        kind="model",
        key=f"model|{name}|{cause}",
        tenant_id=None,
        metric=cause,
        slice={},
        start=day,
        end=day,
        direction="up" if cause == "retrain-sla" else "down",
        severity="high" if cause == "retrain-leakage" else "medium",
        expected=expected,
        observed=observed,
        score=None,
        details=details,
    )


def retrain_on_table(
    reg: Registry,
    meta: MetaStore,
    build: Callable[[Sequence[str]], pa.Table],
    name: str,
    *,
    label: Label = "thumbs_down",
    attributes: Sequence[str] = (),
    sla_seconds: float = DEFAULT_SLA_SECONDS,
    max_ece: float = DEFAULT_MAX_ECE,
    model: ModelKind = "auto",
    valid_days: int = 7,
    test_days: int = 7,
    seed: int = 0,
    n_boot: int = 200,
    n_estimators: int = 300,
    clock: Callable[[], float] = time.monotonic,
    today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.UTC).date(),
    lock: Callable[[], Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> RetrainOutcome:
    """One retrain run on a dataset built by ``build(attributes)``; see the module docstring.

    ``meta`` receives the run record and the incidents; ``clock`` gives the durations and
    ``today`` the incidents' day.
    """
    from contextlib import nullcontext

    from assay.models._lifecycle import train_on_table

    if not (isinstance(sla_seconds, int | float) and sla_seconds > 0):
        raise UsageError(f"sla_seconds must be a positive number (got {sla_seconds!r}); e.g. 7200")
    if not (isinstance(max_ece, int | float) and 0 < max_ece <= 1):
        raise UsageError(f"max_ece must be in (0, 1] (got {max_ece!r}); e.g. 0.05")
    hold = lock if lock is not None else nullcontext
    run_id = meta.start_job(JOB_KIND)
    stages = _Stages(clock, clock())

    def step(stage_name: str) -> None:
        stages.enter(stage_name)
        if progress is not None:
            progress(stage_name)

    champion = _champion(reg, name)
    candidate: VersionRef | None = None
    gate_result: GateResult | None = None
    outcome, error = "failed", None
    incidents: list[NewIncident] = []
    day = today()

    def finish(ids: list[int]) -> RetrainOutcome:
        return _finish(
            meta,
            run_id,
            stages,
            sla_seconds,
            outcome,
            name,
            candidate,
            champion,
            gate_result,
            ids,
            error,
        )

    try:
        champ_sess = None
        extra: list[str] = []
        if champion is not None:
            step("champion")
            extra, champ_sess = champion_attributes(reg, champion)
        wanted = list(dict.fromkeys([*attributes, *extra]))
        step("dataset")
        table = build(wanted)
        try:
            trained = train_on_table(
                reg,
                table,
                name,
                label=label,
                model=model,
                attributes=wanted,
                valid_days=valid_days,
                test_days=test_days,
                seed=seed,
                n_boot=n_boot,
                n_estimators=n_estimators,
                progress=lambda s: step(f"train: {s}"),
                lock=hold,
            )
        except LeakageError as exc:
            outcome, error = "rejected", exc.report.message()[:2000]
            incidents.append(
                _model_incident(
                    name,
                    "retrain-leakage",
                    day,
                    observed=None,
                    expected=None,
                    details={"run_id": run_id, "flagged": exc.report.flagged},
                )
            )
            raise
        candidate = trained.version
        step("compare")
        test = time_split(table, valid_days=valid_days, test_days=test_days).test
        y = labels_of(test)
        cand = comparison_metrics(y, trained.model.predict_proba(test), n_boot=n_boot, seed=seed)
        champ = None
        if champ_sess is not None:
            champ = comparison_metrics(y, onnx_scores(champ_sess, test), n_boot=n_boot, seed=seed)
        gate_result = gate(cand, champ, leakage_flagged=trained.leakage.flagged, max_ece=max_ece)
        step("alias")
        if gate_result.passed:
            alias = "challenger" if champion is not None else "champion"
            with hold():
                reg.promote(name, candidate.version, alias)
            outcome = alias
        else:
            outcome = "rejected"
            ap = (cand["average_precision"] or {}).get("estimate")
            champ_ap = None if champ is None else (champ["average_precision"] or {}).get("estimate")
            incidents.append(
                _model_incident(
                    name,
                    "retrain-gate",
                    day,
                    observed=ap,
                    expected=champ_ap,
                    details={
                        "run_id": run_id,
                        "candidate": str(candidate),
                        **gate_result.to_dict(),
                    },
                )
            )
        with hold():
            reg.client.set_model_version_tag(
                name,
                str(candidate.version),
                TAG_PREFIX + "retrain_gate",
                json.dumps({"run_id": run_id, "outcome": outcome, "reasons": gate_result.reasons}),
            )
    except LeakageError:
        pass
    except Exception as exc:  # recorded, then raised again after the run row is written
        error = f"{type(exc).__name__}: {str(exc)[:1000]}"
        finish([])
        raise
    stages.close()
    seconds = stages.total()
    if seconds > sla_seconds:
        incidents.append(
            _model_incident(
                name,
                "retrain-sla",
                day,
                observed=seconds,
                expected=sla_seconds,
                details={"run_id": run_id, "stages": stages.rows},
            )
        )
    store = IncidentStore(meta)
    ids = []
    for new in incidents:
        inc, _ = store.record(new)
        if inc is not None:
            ids.append(inc.id)
    return finish(ids)


def _finish(
    meta: MetaStore,
    run_id: int,
    stages: _Stages,
    sla_seconds: float,
    outcome: str,
    name: str,
    candidate: VersionRef | None,
    champion: VersionRef | None,
    gate_result: GateResult | None,
    ids: list[int],
    error: str | None,
) -> RetrainOutcome:
    stages.close()
    seconds = stages.total()
    result = RetrainOutcome(
        run_id=run_id,
        outcome=outcome,
        name=name,
        candidate=None if candidate is None else str(candidate),
        champion=None if champion is None else str(champion),
        gate=None if gate_result is None else gate_result.to_dict(),
        stages=stages.rows,
        seconds=seconds,
        sla_seconds=float(sla_seconds),
        sla_exceeded=seconds > sla_seconds,
        incidents=ids,
        error=error,
    )
    meta.finish_job(run_id, outcome, result.summary())
    return result


def retrain(
    ws: Workspace,
    name: str | None = None,
    *,
    label: Label = "thumbs_down",
    days: int = DEFAULT_DAYS,
    until: dt.date | None = None,
    sla_seconds: float = DEFAULT_SLA_SECONDS,
    max_ece: float = DEFAULT_MAX_ECE,
    model: ModelKind = "auto",
    attributes: Sequence[str] = (),
    seed: int = 0,
    clock: Callable[[], float] = time.monotonic,
    progress: Callable[[str], None] | None = None,
) -> RetrainOutcome:
    """One retrain run on the workspace: the ``days`` days ending on ``until`` (default: the
    last stored day). See the module docstring."""
    from assay.models._lifecycle import default_name, registry

    if label not in LABELS:
        raise UsageError(f"label must be one of {', '.join(LABELS)} (got {label!r})")
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise UsageError(f"days must be a whole number >= 1 (got {days!r})")
    end = until if until is not None else ws.last_event_day()
    if end is None:
        raise UsageError("the workspace has no events; ingest some before retraining")
    since = end - dt.timedelta(days=days - 1)

    def build(attrs: Sequence[str]) -> pa.Table:
        return ws.models.dataset(label, since=since, until=end, attributes=attrs)

    return retrain_on_table(
        registry(ws),
        ws.meta,
        build,
        name if name is not None else default_name(label),
        label=label,
        attributes=attributes,
        sla_seconds=sla_seconds,
        max_ece=max_ece,
        model=model,
        seed=seed,
        clock=clock,
        lock=lambda: ws.lock.hold(ws.settings.lock_timeout_seconds),
        progress=progress,
    )


def runs(meta: MetaStore, *, limit: int = 20, kind_prefix: str = "models.") -> pa.Table:
    """The latest model job runs (retrain, monitor), newest first: id, kind, started_at,
    finished_at, status, and the summary's name, candidate, champion, seconds, SLA and
    incidents."""
    rows = meta.execute(
        "SELECT id, kind, started_at, finished_at, status, summary FROM job_runs "
        "WHERE kind LIKE ? ORDER BY id DESC LIMIT ?",
        (kind_prefix + "%", int(limit)),
    )
    out = []
    for run_id, kind, started, finished, status, summary in rows:
        s = json.loads(summary) if summary else {}
        secs = s.get("seconds")
        out.append(
            {
                "id": int(run_id),
                "kind": str(kind),
                "started_at": started,
                "finished_at": finished,
                "status": status,
                "name": s.get("name"),
                "candidate": s.get("candidate"),
                "champion": s.get("champion"),
                "seconds": None if secs is None or not math.isfinite(secs) else float(secs),
                "sla_exceeded": s.get("sla_exceeded"),
                "incidents": ",".join(str(i) for i in s.get("incidents") or []),
                "stages": json.dumps(s.get("stages") or []),
            }
        )
    return pa.Table.from_pylist(out, schema=RUNS_SCHEMA)


RUNS_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("kind", pa.string()),
        ("started_at", pa.string()),
        ("finished_at", pa.string()),
        ("status", pa.string()),
        ("name", pa.string()),
        ("candidate", pa.string()),
        ("champion", pa.string()),
        ("seconds", pa.float64()),
        ("sla_exceeded", pa.bool_()),
        ("incidents", pa.string()),
        ("stages", pa.string()),
    ]
)
