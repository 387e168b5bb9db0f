"""The Models pages: ``/ui/models`` (registry versions, rollouts, model incidents) and
``/ui/models/{name}/{version}`` (one version: its evaluation with ROC, precision-recall and
reliability curves from its held-out predictions, the slices its evaluation flagged, its
launch check, and the rollouts and label-free monitoring incidents that name it).

Everything is read: the registry (:class:`assay.models.Registry` through ``ws.models``), the
version's stored evaluation and held-out predictions (written at training), the launch check
judged without writing anything (:func:`assay.rollout.launch_check` with ``record=False``),
rollouts and their transitions (:func:`assay.rollout.rollouts`), and the incidents of kind
``model`` (raised by ``assay models monitor``: CBPE, the label-free estimate) and ``rollout``.
Nothing is trained, scored or recorded by a page.

Without the models extra (MLflow) or before any model is registered, the page says so in a
sentence. Models are shared by every tenant, so these pages are for admin keys; a tenant key
is told so (403).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from assay._errors import AssayError, NotFoundError
from assay.dashboard._auth import UiError, UiUser, User, backend, not_found
from assay.dashboard._render import render

if TYPE_CHECKING:
    from assay.rollout import Rollout
    from assay.store import Incident, Workspace

router = APIRouter()

#: Bins of the reliability curve (equal-width on the score).
RELIABILITY_BINS = 10
#: The columns of a flagged slice, in the order shown.
FLAGGED_COLUMNS = (
    "feature",
    "value",
    "metric",
    "estimate",
    "ci_low",
    "ci_high",
    "overall",
    "gap",
    "support",
    "p_value",
)
#: Points kept on a drawn ROC or PR curve (the table keeps them all up to this too).
CURVE_POINTS = 200


@dataclass(frozen=True)
class Curves:
    """ROC, precision-recall and reliability points of held-out predictions.

    ``roc``: (false positive rate, true positive rate) by decreasing threshold (sklearn's
    ``roc_curve``); ``pr``: (recall, precision) by increasing recall (``precision_recall_curve``
    reversed); ``reliability``: (mean score, observed positive share, rows) per equal-width
    score bin with rows. ``positives`` and ``rows`` count the held-out rows.
    """

    roc: list[tuple[float, float]]
    pr: list[tuple[float, float]]
    reliability: list[tuple[float, float, int]]
    positives: int
    rows: int


@dataclass(frozen=True)
class VersionView:
    """What the version page shows."""

    name: str
    version: int
    show: dict[str, Any]
    metrics: list[dict[str, Any]] = field(default_factory=list)
    flagged: list[dict[str, Any]] = field(default_factory=list)
    curves: Curves | None = None
    curves_note: str | None = None
    launch: dict[str, Any] | None = None
    launch_note: str | None = None
    rollouts: list[Rollout] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)


def _admin(user: UiUser) -> None:
    if user.tenant_id is not None:
        raise UiError(
            403,
            "Admin key needed",
            "Models are shared by every tenant, so their pages are for admin keys. Sign in "
            "with a key made by `assay keys create --all-tenants --scope read`.",
        )


def curves(y_true: list[bool], y_score: list[float]) -> Curves | None:
    """The curves of held-out predictions, None unless both classes are present.

    Examples
    --------
    >>> c = curves([False, True, False, True], [0.1, 0.4, 0.35, 0.8])  # separable
    >>> c.roc
    [(0.0, 0.0), (0.0, 0.5), (0.0, 1.0), (1.0, 1.0)]
    >>> c.reliability
    [(0.1, 0.0, 1), (0.35, 0.0, 1), (0.4, 1.0, 1), (0.8, 1.0, 1)]
    """
    import numpy as np
    from sklearn.metrics import precision_recall_curve, roc_curve

    y = np.asarray(y_true, dtype=bool)
    s = np.asarray(y_score, dtype=np.float64)
    if y.size == 0 or y.all() or not y.any():
        return None
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=True)
    precision, recall, _ = precision_recall_curve(y, s)
    bins = np.clip((s * RELIABILITY_BINS).astype(np.int64), 0, RELIABILITY_BINS - 1)
    reliability = [
        (float(s[bins == b].mean()), float(y[bins == b].mean()), int((bins == b).sum()))
        for b in range(RELIABILITY_BINS)
        if (bins == b).any()
    ]
    return Curves(
        roc=_thin(list(zip(fpr.tolist(), tpr.tolist(), strict=True))),
        pr=_thin(list(zip(recall[::-1].tolist(), precision[::-1].tolist(), strict=True))),
        reliability=reliability,
        positives=int(y.sum()),
        rows=int(y.size),
    )


def _thin(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """At most ``CURVE_POINTS`` points, evenly spaced, the first and last kept."""
    if len(points) <= CURVE_POINTS:
        return points
    step = (len(points) - 1) / (CURVE_POINTS - 1)
    return [points[round(i * step)] for i in range(CURVE_POINTS)]


def registry_rows(ws: Workspace) -> tuple[list[dict[str, Any]], str | None]:
    """Every registered version (``Registry.list``), or [] and a sentence saying why not."""
    if not ws.settings.mlflow_uri and not (ws.path / "models" / "mlflow.db").exists():
        return [], "No model is registered in this workspace yet (`assay models train`)."
    try:
        return ws.models.list().to_pylist(), None  # type: ignore[attr-defined]
    except ImportError:
        return [], "The models extra is not installed: pip install 'assay[models]'."
    except AssayError as exc:
        return [], f"The registry could not be read: {exc}"


def model_incidents(
    ws: Workspace, name: str | None = None, rollout_ids: set[int] | None = None
) -> list[Incident]:
    """Incidents of kind ``model`` (label-free monitoring, key ``model|NAME|monitor=...``) and
    ``rollout`` (key ``rollout|ID``), newest first; with ``name``, those of that model and of
    the rollouts ``rollout_ids``."""
    found = [
        *ws.incidents.list(state="all", kind="model", limit=50),
        *ws.incidents.list(state="all", kind="rollout", limit=50),
    ]
    if name is not None:
        own = {f"model|{name}"} | {f"rollout|{i}" for i in rollout_ids or set()}
        found = [i for i in found if "|".join(i.key.split("|")[:2]) in own]
    return sorted(found, key=lambda i: i.id, reverse=True)


def _rollouts(ws: Workspace, name: str | None = None) -> list[Rollout]:
    from assay.rollout import rollouts

    found = rollouts(ws).list()
    if name is not None:
        found = [r for r in found if r.model == name]
    return sorted(found, key=lambda r: r.id, reverse=True)


def _evidence(ws: Workspace, name: str, version: int) -> Any:
    """What the registry holds about ``name/version`` (show, evaluation, held-out
    predictions), as the launch gate reads it; :class:`NotFoundError` without it."""
    from assay.rollout._launch import gather

    rows, why = registry_rows(ws)
    if why is not None or not any(r["name"] == name and r["version"] == version for r in rows):
        raise NotFoundError(f"no model version {name}/{version}")
    return gather(ws.models.registry, name, version)  # type: ignore[attr-defined]


def _holdout_curves(evidence: Any) -> tuple[Curves | None, str | None]:
    holdout = evidence.holdout
    if holdout is None or holdout.y_score is None:
        return None, "no held-out scores are stored with this version"
    found = curves([t == "1" for t in holdout.y_true], list(holdout.y_score))
    return found, None if found is not None else "the held-out rows hold one class only"


def version_view(ws: Workspace, name: str, version: int) -> VersionView:
    """One version's page; :class:`NotFoundError` when the registry has no such version."""
    from assay.rollout import launch_check

    evidence = _evidence(ws, name, version)
    evaluation = dict(evidence.evaluation)
    metrics = [
        {"metric": k, **v}
        for k, v in sorted(dict(evaluation.get("metrics") or {}).items())
        if isinstance(v, dict)
    ]
    flagged = [
        {k: r.get(k) for k in FLAGGED_COLUMNS}
        for r in evaluation.get("slices_flagged") or []
        if isinstance(r, dict)
    ]
    found, note = _holdout_curves(evidence)
    moves = _rollouts(ws, name)
    launch, launch_note = None, None
    try:
        # The service's reader handles are assay.Workspace (with .models) at run time.
        check, _ = launch_check(ws, name, version, record=False)  # type: ignore[arg-type]
        launch = check.to_dict()
    except AssayError as exc:
        launch_note = f"the launch check could not be judged: {exc}"
    return VersionView(
        name=name,
        version=version,
        show=dict(evidence.show),
        metrics=metrics,
        flagged=flagged,
        curves=found,
        curves_note=note,
        launch=launch,
        launch_note=launch_note,
        rollouts=moves,
        incidents=model_incidents(ws, name, {r.id for r in moves}),
    )


def _curve_chart(points: list[tuple[float, float]], x_label: str, y_label: str) -> dict[str, Any]:
    return {
        "x": [p[0] for p in points],
        "series": [{"name": y_label, "values": [p[1] for p in points]}],
        "diagonal": x_label != "recall",
        "x_label": x_label,
        "y_label": y_label,
    }


def _cell(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else "n/a"


@router.get("/ui/models")
def models_page(request: Request, user: User) -> Response:
    _admin(user)
    with backend(request).reader(user.key) as ws:
        rows, why = registry_rows(ws)
        live = _rollouts(ws)
        incidents = model_incidents(ws)
    return render(
        request,
        "models.html",
        nav="models",
        rows=rows,
        note=why,
        rollouts=live,
        incidents=incidents,
    )


@router.get("/ui/models/{name}/{version}")
def model_version_page(
    request: Request,
    user: User,
    name: Annotated[str, Path(min_length=1, max_length=256)],
    version: Annotated[int, Path(ge=1, le=1_000_000)],
) -> Response:
    _admin(user)
    with backend(request).reader(user.key) as ws:
        try:
            view = version_view(ws, name, version)
        except NotFoundError:
            raise not_found() from None
    c = view.curves
    charts: dict[str, Any] = {}
    tables: dict[str, list[list[str]]] = {}
    if c is not None:
        charts["roc"] = _curve_chart(c.roc, "false positive rate", "true positive rate")
        charts["pr"] = _curve_chart(c.pr, "recall", "precision")
        charts["reliability"] = _curve_chart(
            [(m, o) for m, o, _ in c.reliability], "mean predicted score", "observed share"
        )
        tables["roc"] = [[_cell(a), _cell(b)] for a, b in c.roc]
        tables["pr"] = [[_cell(a), _cell(b)] for a, b in c.pr]
        tables["reliability"] = [[_cell(m), _cell(o), str(n)] for m, o, n in c.reliability]
    return render(
        request,
        "model_version.html",
        nav="models",
        view=view,
        charts=charts,
        tables=tables,
        csv_base=f"/ui/models/{quote(name, safe='')}/{version}",
    )


@dataclass(frozen=True)
class RolloutView:
    """One rollout: its plan, its transitions (each with the reason its gates gave), and its
    gates judged now on the telemetry since it started (:func:`assay.rollout.evaluate`, which
    changes nothing)."""

    rollout: Rollout
    history: list[Any]
    verdict: str | None
    gates: list[dict[str, Any]]
    note: str | None = None


def rollout_view(ws: Workspace, rollout_id: int) -> RolloutView:
    """The rollout page's facts; :class:`NotFoundError` for an unknown id."""
    from assay.rollout import evaluate, rollouts

    store = rollouts(ws)
    found = store.get(rollout_id)
    history = store.history(rollout_id)
    try:
        judged = evaluate(ws, rollout_id)
    except AssayError as exc:
        return RolloutView(found, history, None, [], f"the gates could not be judged: {exc}")
    return RolloutView(found, history, str(judged.verdict), [g.as_dict() for g in judged.gates])


@router.get("/ui/rollouts/{rollout_id}")
def rollout_page(
    request: Request, user: User, rollout_id: Annotated[int, Path(ge=1, le=2**62)]
) -> Response:
    _admin(user)
    with backend(request).reader(user.key) as ws:
        try:
            view = rollout_view(ws, rollout_id)
        except NotFoundError:
            raise not_found() from None
    return render(request, "rollout.html", nav="models", view=view, r=view.rollout)


#: The columns of each curve's CSV.
CURVE_COLUMNS = {
    "roc": ("false_positive_rate", "true_positive_rate"),
    "pr": ("recall", "precision"),
    "reliability": ("mean_score", "observed_share", "rows"),
}


@router.get("/ui/models/{name}/{version}/{curve}.csv")
def curve_csv(
    request: Request,
    user: User,
    name: Annotated[str, Path(min_length=1, max_length=256)],
    version: Annotated[int, Path(ge=1, le=1_000_000)],
    curve: Annotated[str, Path(pattern="^(roc|pr|reliability)$")],
) -> Response:
    """One curve of a version's held-out predictions, every point at full precision."""
    _admin(user)
    with backend(request).reader(user.key) as ws:
        try:
            found, _ = _holdout_curves(_evidence(ws, name, version))
        except NotFoundError:
            raise not_found() from None
    points: list[tuple[Any, ...]] = []
    if found is not None:
        points = list(getattr(found, curve))
    lines = [",".join(CURVE_COLUMNS[curve])]
    lines += [",".join(repr(v) for v in p) for p in points]
    return Response(
        "\n".join(lines) + "\n",
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{curve}.csv"'},
    )
