"""Drift between a reference and a range of days, from stored profiles: per column, per slice,
per dataset.

:func:`drift_report` loads the profiles (``assay profile build``) of a reference (a range of
days, a trailing window before the target, or a stored reference such as a model's training
profile, see :func:`resolve_reference`) and of a target range, merges each over its days, and
compares them column by column with the sketch
statistics of :mod:`assay.drift` (numeric columns from their KLL sketches, categorical ones
from their folded item counts). A column's verdict is :func:`column_verdict`; a dataset (a
tenant, or a slice of it) has drifted when at least ``dataset_share`` of its compared columns
have (Evidently's dataset rule, default one half). Raw data is never read: only the profiles.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa

from assay._errors import UsageError
from assay.drift._stats import (
    DEFAULT_THRESHOLDS,
    categorical_stats,
    column_verdict,
    design_effect,
    numeric_stats_sketch,
)

#: A dataset has drifted when at least this share of its compared columns has.
DEFAULT_DATASET_SHARE = 0.5

#: The statistics printed per column (others stay in the JSON).
_SHOWN = ("psi", "js_distance", "wasserstein_normed", "ks_statistic", "chi_square_p_value")

#: A reference: (first day, last day), or a spec ``FIRST..LAST``, ``last:Nd`` (``last:Nw``)
#: or ``ref:NAME`` (see :func:`resolve_reference`).
ReferenceSpec = tuple[dt.date, dt.date] | str

_TRAILING = re.compile(r"last:([0-9]{1,5})([dw])")
_STORED_PREFIX = "ref:"


@dataclass(frozen=True)
class ResolvedReference:
    """A reference spec resolved against a target range.

    Attributes
    ----------
    kind : ``range`` (fixed days), ``trailing`` (the days just before the target) or
        ``stored`` (a reference stored by ``assay profile reference save``).
    spec : the reference as written: ``2026-01-01..2026-01-28``, ``last:28d``, ``ref:NAME``.
    days : the (first, last) days of a range or trailing window; None for a stored one.
    name : the stored reference's name, else None.
    """

    kind: Literal["range", "trailing", "stored"]
    spec: str
    days: tuple[dt.date, dt.date] | None = None
    name: str | None = None


def trailing_window(days: int, target_first: dt.date) -> tuple[dt.date, dt.date]:
    """The ``days`` days that end the day before ``target_first``, as (first, last).

    Examples
    --------
    >>> import datetime as dt
    >>> trailing_window(28, dt.date(2026, 2, 1))
    (datetime.date(2026, 1, 4), datetime.date(2026, 1, 31))
    """
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise UsageError(f"a trailing window needs at least 1 day (got {days!r}); e.g. last:28d")
    one = dt.timedelta(days=1)
    return target_first - days * one, target_first - one


def resolve_reference(
    reference: ReferenceSpec, target: tuple[dt.date, dt.date]
) -> ResolvedReference:
    """Resolve a reference spec against the target range.

    Parameters
    ----------
    reference : one of

        - ``(first, last)`` dates, or the text ``FIRST..LAST`` (``YYYY-MM-DD..YYYY-MM-DD``):
          those days, inclusive;
        - ``last:Nd`` (or ``last:Nw``, N weeks): the N days that end the day before the
          target's first day (``last:28d`` against a target from 2026-02-01 is
          2026-01-04..2026-01-31);
        - ``ref:NAME``: the stored reference NAME (``assay profile reference save``).
    target : the target's (first, last) days.

    Returns
    -------
    ResolvedReference

    Raises
    ------
    UsageError
        If the spec is none of these, or a range starts after it ends.

    Examples
    --------
    >>> import datetime as dt
    >>> target = (dt.date(2026, 2, 1), dt.date(2026, 2, 7))
    >>> resolve_reference("last:2w", target).days
    (datetime.date(2026, 1, 18), datetime.date(2026, 1, 31))
    >>> resolve_reference("ref:intent-v3", target).name
    'intent-v3'
    """
    if isinstance(reference, tuple):
        first, last = reference
        _check_range("reference", (first, last))
        return ResolvedReference("range", f"{first}..{last}", days=(first, last))
    if not isinstance(reference, str):
        raise UsageError(
            f"reference must be a (first, last) tuple of dates or a spec string "
            f"(got {type(reference).__name__}); e.g. '2026-01-01..2026-01-28' or 'last:28d'"
        )
    text = reference.strip()
    if text.startswith(_STORED_PREFIX):
        from assay.profiles import check_reference_name

        name = check_reference_name(text[len(_STORED_PREFIX) :])
        return ResolvedReference("stored", text, name=name)
    trailing = _TRAILING.fullmatch(text)
    if trailing is not None:
        n = int(trailing.group(1)) * (7 if trailing.group(2) == "w" else 1)
        return ResolvedReference("trailing", text, days=trailing_window(n, target[0]))
    first_text, sep, last_text = text.partition("..")
    try:
        if not sep:
            raise ValueError
        days = dt.date.fromisoformat(first_text.strip()), dt.date.fromisoformat(last_text.strip())
    except ValueError:
        raise UsageError(
            "reference must be a range of days FIRST..LAST (e.g. 2026-01-01..2026-01-28), a "
            "trailing window last:Nd before the target (e.g. last:28d) or a stored reference "
            f"ref:NAME (got {text[:40]!r})"
        ) from None
    _check_range("reference", days)
    return ResolvedReference("range", f"{days[0]}..{days[1]}", days=days)


def _check_range(name: str, days: tuple[dt.date, dt.date]) -> None:
    first, last = days
    if first > last:
        raise UsageError(
            f"the {name} range starts after it ends (got {first}..{last}); swap the days"
        )


@dataclass(frozen=True)
class DriftReport:
    """What :func:`drift_report` found.

    Attributes
    ----------
    reference, target : the (first, last) days compared (for a stored reference, the first
        and last day of its events).
    by : the slice field, or None for whole tenants.
    columns : one dict per (tenant, slice, column) compared: ``tenant_id``, ``slice_field``,
        ``slice_value``, ``column``, ``kind``, ``drift`` and every statistic.
    datasets : one dict per (tenant, slice): ``tenant_id``, ``slice_field``, ``slice_value``,
        ``columns``, ``drifted``, ``share``, ``drift``.
    skipped : (tenant, slice, reason) of datasets present on one side only (tenant ``"*"``:
        a slice of a pooled reference that no target tenant has).
    reference_spec : the reference as asked: ``FIRST..LAST``, ``last:Nd`` or ``ref:NAME``.
    reference_name : the stored reference's name, or None.
    reference_pooled : whether the reference is pooled over tenants: each target tenant was
        compared with the one pooled profile.
    recorded : with ``record=True``, per drifted dataset the ``(incident, outcome)`` of
        ``ws.incidents.record``.
    """

    reference: tuple[dt.date, dt.date]
    target: tuple[dt.date, dt.date]
    by: str | None
    columns: list[dict[str, Any]] = field(default_factory=list)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[str, str | None, str]] = field(default_factory=list)
    reference_spec: str = ""
    reference_name: str | None = None
    reference_pooled: bool = False
    recorded: list[tuple[Any, str]] = field(default_factory=list)

    @property
    def reference_label(self) -> str:
        """The reference in words: its spec, with the days of a window or stored reference."""
        days = f"{self.reference[0]}..{self.reference[1]}"
        spec = self.reference_spec or days
        if spec == days:
            return days
        return f"{spec} ({days}" + (", pooled over tenants)" if self.reference_pooled else ")")

    @property
    def drifted(self) -> list[dict[str, Any]]:
        """The datasets that drifted."""
        return [d for d in self.datasets if d["drift"]]

    def to_arrow(self) -> pa.Table:
        """The per-column rows as an Arrow table."""
        names = ["tenant_id", "slice_field", "slice_value", "column", "kind", "drift", *_SHOWN]
        return pa.table({n: [r.get(n) for r in self.columns] for n in names})

    def to_html(self) -> str:
        """A self-contained HTML page (inline CSS, no scripts, no links)."""
        return _html(self)


def drift_report(
    ws: Any,
    *,
    reference: ReferenceSpec,
    target: tuple[dt.date, dt.date],
    by: str | None = None,
    tenant: str | None = None,
    columns: Sequence[str] | None = None,
    thresholds: dict[str, float] | None = None,
    dataset_share: float = DEFAULT_DATASET_SHARE,
    record: bool = False,
) -> DriftReport:
    """Compare the profiles of ``target`` days with those of a reference.

    Parameters
    ----------
    ws : the workspace (profiles built by ``assay profile build``).
    reference : (first day, last day), inclusive, or a spec: ``FIRST..LAST``, ``last:Nd`` (the
        N days before the target) or ``ref:NAME`` (a stored reference); see
        :func:`resolve_reference`. Against a pooled stored reference, each target tenant (and
        slice) is compared with the reference's one pooled profile (of that slice).
    target : (first day, last day), inclusive.
    by : a slice field the profiles were built with (``model_version``, ``prompt_template``,
        ``locale``, ``platform``), or None for whole tenants.
    tenant : one tenant, or None for every tenant.
    columns : the columns to compare (default every numeric and categorical column).
    thresholds : overrides of :data:`DEFAULT_THRESHOLDS`.
    dataset_share : share of drifted columns at which a dataset has drifted.
    record : record each drifted dataset as an incident of kind ``drift`` in the workspace's
        incident store (:func:`drift_incident`): one series per tenant, slice and reference
        spec, so a weekly run against ``last:28d`` extends the incident while the drift lasts
        and never raises it twice.

    Returns
    -------
    DriftReport
    """
    from assay.profiles import POOLED, load_profiles, load_reference, reference_info

    _check_range("target", target)
    resolved = resolve_reference(reference, target)
    if not 0.0 < dataset_share <= 1.0:
        raise UsageError(f"dataset_share must be in (0, 1] (got {dataset_share!r})")
    field_name = by or ""
    pooled = False
    if resolved.name is not None:
        info = reference_info(ws, resolved.name)
        pooled = info.pooled
        days = (info.first_day, info.last_day)
        loaded = load_reference(ws, resolved.name, tenant=tenant, slice_field=field_name)
        missing = f"not in the reference {resolved.name}"
    else:
        assert resolved.days is not None
        days = resolved.days
        loaded = load_profiles(
            ws, since=days[0], until=days[1], tenant=tenant, slice_field=field_name
        )
        missing = "no profile in the reference range"
    ref = {(p.tenant_id, p.slice_value): p for p in loaded}
    cur = {
        (p.tenant_id, p.slice_value): p
        for p in load_profiles(
            ws, since=target[0], until=target[1], tenant=tenant, slice_field=field_name
        )
    }
    report = DriftReport(
        days,
        target,
        by,
        reference_spec=resolved.spec,
        reference_name=resolved.name,
        reference_pooled=pooled,
    )

    def ref_key(key: tuple[str, str | None]) -> tuple[str, str | None]:
        """The reference profile a target dataset is compared with."""
        return (POOLED, key[1]) if pooled else key

    limits = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    matched = {ref_key(key) for key in cur}
    keys = set(cur) | {key for key in ref if key not in matched}
    for key in sorted(keys, key=lambda k: (k[0], str(k[1]))):
        if key not in cur:
            report.skipped.append((key[0], key[1], "no profile in the target range"))
            continue
        if ref_key(key) not in ref:
            report.skipped.append((key[0], key[1], missing))
            continue
        reference_profile = ref[ref_key(key)]
        users = _clusters(reference_profile, cur[key])
        drifted = compared = 0
        for name, rc in sorted(reference_profile.columns.items()):
            cc = cur[key].columns.get(name)
            if cc is None or rc.kind == "count" or (columns is not None and name not in columns):
                continue
            stats = _column_stats(rc, cc, users)
            if stats is None:
                continue
            verdict = column_verdict(stats, rc.kind, thresholds=limits)
            compared += 1
            drifted += int(verdict)
            report.columns.append(
                {
                    "tenant_id": key[0],
                    "slice_field": field_name,
                    "slice_value": key[1],
                    "column": name,
                    "kind": rc.kind,
                    "drift": verdict,
                    **{k: _num(v) for k, v in stats.items()},
                }
            )
        if compared:
            share = drifted / compared
            report.datasets.append(
                {
                    "tenant_id": key[0],
                    "slice_field": field_name,
                    "slice_value": key[1],
                    "columns": compared,
                    "drifted": drifted,
                    "share": share,
                    "drift": share >= dataset_share,
                }
            )
    if record:
        for d in report.drifted:
            report.recorded.append(ws.incidents.record(drift_incident(report, d)))
    return report


def drift_incident(report: DriftReport, dataset: dict[str, Any]) -> Any:
    """The incident (``assay.store.NewIncident``) of one drifted dataset of ``report``.

    Key ``drift|tenant=T[|FIELD=VALUE]|reference=SPEC``; the days are the target's; observed
    is the share of drifted columns (no expected value); severity
    ``high`` when at least three quarters of the columns drifted, else ``medium``; the details
    name the reference and the drifted columns. The columns' figures stay in the report: KLL
    merges compact at random, so figures move in their last digits between two runs, and a
    re-run must leave the incident unchanged.
    """
    from assay.store import NewIncident

    where = {"tenant_id": dataset["tenant_id"], "slice_value": dataset["slice_value"]}
    cols = [
        c
        for c in report.columns
        if c["drift"]
        and c["tenant_id"] == where["tenant_id"]
        and c["slice_value"] == where["slice_value"]
    ]
    spec = report.reference_spec or f"{report.reference[0]}..{report.reference[1]}"
    sliced = {report.by: dataset["slice_value"]} if report.by else {}
    key = f"drift|tenant={dataset['tenant_id']}"
    if report.by:
        key += f"|{report.by}={dataset['slice_value']}"
    return NewIncident(
        kind="drift",
        key=f"{key}|reference={spec}",
        tenant_id=dataset["tenant_id"],
        metric="drifted_columns_share",
        slice=sliced,
        start=report.target[0],
        end=report.target[1],
        direction="up",
        severity="high" if dataset["share"] >= 0.75 else "medium",
        expected=None,
        observed=float(dataset["share"]),
        score=None,
        details={
            "reference": report.reference_label,
            "reference_days": [d.isoformat() for d in report.reference],
            "columns_compared": dataset["columns"],
            "columns": sorted(c["column"] for c in cols),
        },
    )


def _clusters(ref: Any, cur: Any) -> tuple[int, float] | None:
    """Both sides' events with a user id and the sum over users of their events squared
    (each side's AMS estimate; from the distinct users when profiles have no AMS sketch, as
    if users were equally active), or None for profiles without either."""
    sides = [p.columns.get("user_id") for p in (ref, cur)]
    if any(c is None or c.non_null == 0 for c in sides):
        return None
    rows = [c.non_null for c in sides]
    squares = [c.sum_squares for c in sides]
    if all(q is not None for q in squares):
        return sum(rows), float(sum(q for q in squares if q is not None))
    users = [c.distinct for c in sides]
    if all(u is not None and u > 0 for u in users):
        return sum(rows), sum(n * n / u for n, u in zip(rows, users, strict=True) if u)
    return None


def _column_stats(
    ref: Any, cur: Any, clusters: tuple[int, float] | None = None
) -> dict[str, float] | None:
    """The drift statistics of one column's two profiles; None when a side has no value.

    With ``clusters`` (events with a user and the sum of users' events squared, both sides),
    the tests of shares (categories, missingness) count users, not events: their statistics
    are divided by the design effect of the column (``docs/drift.md``)."""
    deff = 1.0
    if clusters is not None and ref.non_null + cur.non_null > 0:
        rows, squares = clusters
        share = min(1.0, (ref.non_null + cur.non_null) / rows)
        deff = design_effect(rows, squares, share=share)
    if ref.kind == "numeric":
        rs, cs = ref.sketch(), cur.sketch()
        if rs is None or cs is None:
            return None
        return numeric_stats_sketch(
            rs, cs, ref_missing=ref.nulls, cur_missing=cur.nulls, design_effect=deff
        )
    if not ref.items or not cur.items:
        return None
    return categorical_stats(
        dict(ref.items),
        dict(cur.items),
        ref_missing=ref.nulls,
        cur_missing=cur.nulls,
        design_effect=deff,
    )


def _num(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _html(report: DriftReport) -> str:
    esc = html.escape

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return esc("" if v is None else str(v))

    title = f"Drift: {report.target[0]}..{report.target[1]} against {report.reference_label}" + (
        f", by {report.by}" if report.by else ""
    )
    rows = []
    for d in report.datasets:
        cls = "drift" if d["drift"] else "ok"
        rows.append(
            f"<tr class='{cls}'><td>{cell(d['tenant_id'])}</td><td>{cell(d['slice_value'])}</td>"
            f"<td>{d['drifted']} / {d['columns']}</td><td>{'yes' if d['drift'] else 'no'}</td></tr>"
        )
    cols = []
    for c in report.columns:
        cls = "drift" if c["drift"] else "ok"
        cols.append(
            f"<tr class='{cls}'><td>{cell(c['tenant_id'])}</td><td>{cell(c['slice_value'])}</td>"
            f"<td>{cell(c['column'])}</td><td>{cell(c['kind'])}</td>"
            + "".join(f"<td>{cell(c.get(k))}</td>" for k in _SHOWN)
            + f"<td>{'yes' if c['drift'] else 'no'}</td></tr>"
        )
    head = "".join(f"<th>{esc(k)}</th>" for k in _SHOWN)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; }}
tr.drift td {{ background: #fde2e1; }}
</style></head><body>
<h1>{esc(title)}</h1>
<p>{len(report.drifted)} of {len(report.datasets)} dataset(s) drifted (a dataset drifts when at
least half of its columns do). Computed from stored profiles only; rare values were folded into
&lt;OTHER&gt; before storage.</p>
<h2>Datasets</h2>
<table><tr><th>tenant</th><th>slice</th><th>columns drifted</th><th>drift</th></tr>
{"".join(rows)}</table>
<h2>Columns</h2>
<table><tr><th>tenant</th><th>slice</th><th>column</th><th>kind</th>{head}<th>drift</th></tr>
{"".join(cols)}</table>
</body></html>
"""
