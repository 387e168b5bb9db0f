"""The Drift and regressions page ``/ui/drift?reference=...&target=...&tenant=...&by=...``.

``reference`` is what ``assay drift --reference`` takes (``FIRST..LAST`` days, ``last:Nd``: the
N days before the target, or ``ref:NAME``: a stored reference; default ``last:28d``);
``target`` is ``FIRST..LAST`` (default: the 7 days up to the last event day); ``by`` a slice
field the profiles were built with. The page reads the profiles already built (it never builds
them: ``assay profile build``, or the running service's refresh, does) through
:func:`assay.drift.drift_report`, ranks the columns by drift, and compares the chosen column's
distribution (``&column=``) on both sides: the reference's deciles as bins for a numeric column
(shares from each side's KLL sketch, as the drift statistics bin them), the items for a
categorical one. Release regressions and drift incidents stored in the workspace are listed
with links to their incident pages.

A tenant key compares its own tenant only (another tenant in the link is a 404).
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from assay._errors import AssayError
from assay._records import value_text
from assay.dashboard._auth import UiError, UiUser, User, backend
from assay.dashboard._render import render
from assay.dashboard._sessions import page_tenant

if TYPE_CHECKING:
    from assay.store import Incident, Workspace

router = APIRouter()

#: The reference when none is asked for.
DEFAULT_REFERENCE = "last:28d"
#: Target days when none are asked for: the week up to the last event day.
DEFAULT_TARGET_DAYS = 7
#: Bins of a numeric column's distribution: the reference's deciles.
BINS = 10
#: Items of a categorical column shown (the rest summed as "(other items)").
TOP_ITEMS = 12
#: Slice fields the profiles can be compared by (``assay drift --by``).
BY_FIELDS = ("model_version", "prompt_template", "locale", "platform")
#: The statistics shown per column (those of ``assay drift``'s table).
STATISTICS = ("psi", "js_distance", "wasserstein_normed", "ks_statistic", "chi_square_p_value")
#: Incidents listed under "Regressions and drift incidents".
INCIDENTS_SHOWN = 20


@dataclass(frozen=True)
class Distribution:
    """One column on both sides: ``labels`` (bins or items) and each side's shares (summing
    to 1 over the labels), with each side's count of values."""

    column: str
    kind: str
    labels: list[str]
    reference: list[float]
    target: list[float]
    reference_count: int
    target_count: int
    #: Whose distribution: the tenant, and its slice as text ("" for the whole tenant).
    tenant: str = ""
    slice: str = ""


@dataclass(frozen=True)
class DriftView:
    """What the Drift page shows (:func:`drift_view`)."""

    reference_label: str
    reference: tuple[dt.date, dt.date]
    target: tuple[dt.date, dt.date]
    tenant: str | None
    by: str | None
    columns: list[dict[str, Any]] = field(default_factory=list)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    distribution: Distribution | None = None
    note: str | None = None


def parse_days(text: str, name: str) -> tuple[dt.date, dt.date]:
    """``FIRST..LAST`` as two days.

    Examples
    --------
    >>> parse_days("2026-03-01..2026-03-07", "target")
    (datetime.date(2026, 3, 1), datetime.date(2026, 3, 7))
    """
    first, sep, last = text.partition("..")
    try:
        if not sep:
            raise ValueError
        days = (dt.date.fromisoformat(first.strip()), dt.date.fromisoformat(last.strip()))
    except ValueError:
        raise UiError(
            400,
            "Bad range",
            f"{name} must be days FIRST..LAST, e.g. 2026-03-01..2026-03-07 (got {text[:40]!r}).",
        ) from None
    if days[0] > days[1]:
        raise UiError(400, "Bad range", f"{name} starts after it ends ({text[:40]}); swap them.")
    return days


def _reference(text: str) -> str | tuple[dt.date, dt.date]:
    """A range of days as days; ``last:Nd`` and ``ref:NAME`` as given (drift resolves them)."""
    spec = text.strip()
    if spec.startswith("ref:") or ".." not in spec:
        return spec
    return parse_days(spec, "reference")


def rank_columns(columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drifted columns first, then by Jensen-Shannon distance (then PSI), largest first.

    Examples
    --------
    >>> rows = [{"column": "a", "drift": False, "js_distance": 0.3},
    ...         {"column": "b", "drift": True, "js_distance": 0.1},
    ...         {"column": "c", "drift": False, "js_distance": None, "psi": 0.5}]
    >>> [r["column"] for r in rank_columns(rows)]
    ['b', 'a', 'c']
    """

    def key(r: dict[str, Any]) -> tuple[bool, float, float]:
        return (not r.get("drift"), -(r.get("js_distance") or 0.0), -(r.get("psi") or 0.0))

    return sorted(columns, key=key)


def drift_view(
    ws: Workspace,
    *,
    reference: str | tuple[dt.date, dt.date],
    target: tuple[dt.date, dt.date],
    tenant: str | None,
    by: str | None = None,
    column: str | None = None,
) -> DriftView:
    """Columns ranked by drift and one column's distributions, from the stored profiles."""
    from assay.drift import drift_report

    report = drift_report(ws, reference=reference, target=target, by=by, tenant=tenant)
    # Every row has every statistic (None where it does not apply to the column's kind).
    ranked = rank_columns([{**dict.fromkeys(STATISTICS), **r} for r in report.columns])
    note = None
    if not report.columns:
        note = (
            "no profiles to compare on these days: build them with `assay profile build` "
            "(the running service refreshes them), or choose other days"
        )
    distribution = None
    chosen = [r for r in ranked if column is None or r["column"] == column]
    if chosen:
        top = chosen[0]
        distribution = column_distribution(
            ws,
            reference=report.reference,
            target=target,
            tenant=top["tenant_id"],
            slice_field=top["slice_field"] or "",
            slice_value=top["slice_value"],
            column=top["column"],
            reference_name=report.reference_name,
        )
        if distribution is not None:
            label = f"{top['slice_field']}={value_text(top['slice_value'])}"
            distribution = replace(
                distribution, tenant=top["tenant_id"], slice=label if top["slice_field"] else ""
            )
    return DriftView(
        reference_label=report.reference_label,
        reference=report.reference,
        target=target,
        tenant=tenant,
        by=by,
        columns=ranked,
        datasets=report.datasets,
        distribution=distribution,
        note=note,
    )


def column_distribution(
    ws: Workspace,
    *,
    reference: tuple[dt.date, dt.date],
    target: tuple[dt.date, dt.date],
    tenant: str,
    slice_field: str,
    slice_value: str | None,
    column: str,
    reference_name: str | None = None,
) -> Distribution | None:
    """One column of one tenant (and slice) on the reference and the target days.

    Numeric: bins whose inner edges are the reference's deciles (``get_quantiles`` of its KLL
    sketch at j/10, inclusive), the shares of each side from its sketch's CDF at those edges
    (right-closed bins, the outer ones open-ended), as the drift statistics bin them.
    Categorical: the share of each item among the non-null values, the ``TOP_ITEMS`` largest
    on either side, the rest summed. None when either side has no values.
    """
    from assay.profiles import load_profiles, load_reference

    def pick(profiles: list[Any]) -> Any:
        for p in profiles:
            # A whole tenant is one profile (its slice_value is "").
            if not slice_field or p.slice_value == slice_value:
                return p.columns.get(column)
        return None

    if reference_name is not None:
        ref_col = pick(load_reference(ws, reference_name, tenant=tenant, slice_field=slice_field))
    else:
        ref_col = pick(
            load_profiles(
                ws, since=reference[0], until=reference[1], tenant=tenant, slice_field=slice_field
            )
        )
    cur_col = pick(
        load_profiles(ws, since=target[0], until=target[1], tenant=tenant, slice_field=slice_field)
    )
    if ref_col is None or cur_col is None:
        return None
    if ref_col.kind == "numeric":
        return _numeric(column, ref_col, cur_col)
    if ref_col.kind == "categorical":
        return _categorical(column, ref_col, cur_col)
    return None


def _numeric(column: str, ref: Any, cur: Any) -> Distribution | None:
    import numpy as np
    from datasketches import kll_doubles_sketch

    if ref.kll is None or cur.kll is None:
        return None
    r = kll_doubles_sketch.deserialize(ref.kll)
    c = kll_doubles_sketch.deserialize(cur.kll)
    ranks = [j / BINS for j in range(1, BINS)]
    edges = np.unique(np.asarray(r.get_quantiles(ranks, True), dtype=np.float64)).tolist()

    def shares(sk: Any) -> list[float]:
        cdf = [float(x) for x in sk.get_cdf(edges, True)][: len(edges)]
        return [b - a for a, b in zip([0.0, *cdf], [*cdf, 1.0], strict=True)]

    bounds = [None, *edges, None]
    labels = [_bin_label(lo, hi) for lo, hi in itertools.pairwise(bounds)]
    return Distribution(column, "numeric", labels, shares(r), shares(c), int(r.n), int(c.n))


def _bin_label(lo: float | None, hi: float | None) -> str:
    if lo is None:
        return f"≤ {hi:.4g}"
    if hi is None:
        return f"> {lo:.4g}"
    return f"({lo:.4g}, {hi:.4g}]"


def _categorical(column: str, ref: Any, cur: Any) -> Distribution | None:
    ref_items = {str(k): int(v) for k, v in dict(ref.items or {}).items()}
    cur_items = {str(k): int(v) for k, v in dict(cur.items or {}).items()}
    n_ref, n_cur = sum(ref_items.values()), sum(cur_items.values())
    if not n_ref or not n_cur:
        return None
    both = sorted(
        set(ref_items) | set(cur_items),
        key=lambda k: (-max(ref_items.get(k, 0) / n_ref, cur_items.get(k, 0) / n_cur), k),
    )
    shown, rest = both[:TOP_ITEMS], both[TOP_ITEMS:]
    ref_shares = [ref_items.get(k, 0) / n_ref for k in shown]
    cur_shares = [cur_items.get(k, 0) / n_cur for k in shown]
    if rest:
        shown = [*shown, "(other items)"]
        ref_shares.append(sum(ref_items.get(k, 0) for k in rest) / n_ref)
        cur_shares.append(sum(cur_items.get(k, 0) for k in rest) / n_cur)
    return Distribution(column, "categorical", shown, ref_shares, cur_shares, n_ref, n_cur)


def release_incidents(ws: Workspace, tenant: str | None) -> list[Incident]:
    """Stored regression and drift incidents (newest first), a tenant key's own only."""
    found: list[Incident] = []
    for kind in ("regression", "drift"):
        found += ws.incidents.list(state="all", kind=kind, tenant=tenant, limit=INCIDENTS_SHOWN)
    if tenant is not None:
        found = [i for i in found if i.tenant_id == tenant]
    return sorted(found, key=lambda i: i.id, reverse=True)[:INCIDENTS_SHOWN]


def _chart(d: Distribution) -> dict[str, Any]:
    return {
        "x": d.labels,
        "series": [
            {"name": "reference", "values": d.reference},
            {"name": "target", "values": d.target},
        ],
        "format": "percent",
        "y_label": f"share of {d.column}",
    }


@dataclass(frozen=True)
class _Page:
    view: DriftView
    params: dict[str, str]
    incidents: list[Incident]
    tenants: list[str]


@dataclass
class DriftQuery:
    """The query of the Drift page (and of its CSV): every page state is in the URL."""

    reference: Annotated[str, Query(max_length=64)] = DEFAULT_REFERENCE
    target: Annotated[str | None, Query(max_length=32)] = None
    tenant: Annotated[str | None, Query(max_length=128)] = None
    by: Annotated[str | None, Query(max_length=32)] = None
    column: Annotated[str | None, Query(max_length=64)] = None


Asked = Annotated[DriftQuery, Depends()]


def _page(request: Request, user: UiUser, q: DriftQuery) -> _Page:
    # The page's own form sends "all tenants" and "whole tenant" as empty fields.
    q = replace(q, tenant=q.tenant or None, by=q.by or None)
    if q.by is not None and q.by not in BY_FIELDS:
        raise UiError(400, "Bad slice", f"by must be one of {', '.join(BY_FIELDS)}.")
    ref = _reference(q.reference)
    with backend(request).reader(user.key) as ws:
        scope = page_tenant(user, q.tenant, ws)
        if q.target is None:
            last = ws.last_event_day() or dt.datetime.now(dt.UTC).date()
            days = (last - dt.timedelta(days=DEFAULT_TARGET_DAYS - 1), last)
        else:
            days = parse_days(q.target, "target")
        try:
            view = drift_view(
                ws, reference=ref, target=days, tenant=scope, by=q.by, column=q.column
            )
        except AssayError as exc:
            raise UiError(400, "Cannot compare", str(exc)) from None
        incidents = release_incidents(ws, user.tenant_id or scope)
        tenants = ws.tenants() if user.is_admin else []
    params = {"reference": q.reference, "target": f"{days[0]}..{days[1]}"}
    params |= {k: v for k, v in (("tenant", scope), ("by", q.by)) if v}
    return _Page(view, params, incidents, tenants)


@router.get("/ui/drift")
def drift_page(request: Request, user: User, q: Asked) -> Response:
    page = _page(request, user, q)
    view, params = page.view, page.params
    dist = view.distribution
    return render(
        request,
        "drift.html",
        nav="drift",
        view=view,
        reference_spec=q.reference,
        target_spec=params["target"],
        tenants=page.tenants,
        by_fields=BY_FIELDS,
        incidents=page.incidents,
        column_href=lambda name, tenant: (
            "/ui/drift?" + urlencode({**params, "tenant": tenant, "column": name})
        ),
        slice_value=value_text,
        chart=_chart(dist) if dist is not None else None,
        dist_rows=(
            [
                [label, f"{a:.4f}", f"{b:.4f}"]
                for label, a, b in zip(dist.labels, dist.reference, dist.target, strict=True)
            ]
            if dist is not None
            else []
        ),
        csv_href="/ui/drift/distribution.csv?"
        + urlencode({**params, **({"column": dist.column} if dist else {})}),
    )


@router.get("/ui/drift/distribution.csv")
def distribution_csv(request: Request, user: User, q: Asked) -> Response:
    """The compared distribution of the Drift page with the same parameters, as CSV."""
    dist = _page(request, user, q).view.distribution
    lines = ["bin_or_item,reference_share,target_share"]
    if dist is not None:
        for label, a, b in zip(dist.labels, dist.reference, dist.target, strict=True):
            lines.append(f"{_csv_text(label)},{a!r},{b!r}")
    return Response(
        "\n".join(lines) + "\n",
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="drift-distribution.csv"'},
    )


def _csv_text(text: str) -> str:
    """A CSV cell: quoted when it holds a comma, a quote or a line break."""
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text
