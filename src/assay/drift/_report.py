"""Drift between two ranges of days, from stored profiles: per column, per slice, per dataset.

:func:`drift_report` loads the profiles (``assay profile build``) of a reference range and a
target range, merges each over its days, and compares them column by column with the sketch
statistics of :mod:`assay.drift` (numeric columns from their KLL sketches, categorical ones
from their folded item counts). A column's verdict is :func:`column_verdict`; a dataset (a
tenant, or a slice of it) has drifted when at least ``dataset_share`` of its compared columns
have (Evidently's dataset rule, default one half). Raw data is never read: only the profiles.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from assay._errors import UsageError
from assay.drift._stats import (
    DEFAULT_THRESHOLDS,
    categorical_stats,
    column_verdict,
    numeric_stats_sketch,
)

#: A dataset has drifted when at least this share of its compared columns has.
DEFAULT_DATASET_SHARE = 0.5

#: The statistics printed per column (others stay in the JSON).
_SHOWN = ("psi", "js_distance", "wasserstein_normed", "ks_statistic", "chi_square_p_value")


@dataclass(frozen=True)
class DriftReport:
    """What :func:`drift_report` found.

    Attributes
    ----------
    reference, target : the (first, last) days compared.
    by : the slice field, or None for whole tenants.
    columns : one dict per (tenant, slice, column) compared: ``tenant_id``, ``slice_field``,
        ``slice_value``, ``column``, ``kind``, ``drift`` and every statistic.
    datasets : one dict per (tenant, slice): ``tenant_id``, ``slice_field``, ``slice_value``,
        ``columns``, ``drifted``, ``share``, ``drift``.
    skipped : (tenant, slice, reason) of datasets present in only one range.
    """

    reference: tuple[dt.date, dt.date]
    target: tuple[dt.date, dt.date]
    by: str | None
    columns: list[dict[str, Any]] = field(default_factory=list)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[str, str | None, str]] = field(default_factory=list)

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
    reference: tuple[dt.date, dt.date],
    target: tuple[dt.date, dt.date],
    by: str | None = None,
    tenant: str | None = None,
    columns: Sequence[str] | None = None,
    thresholds: dict[str, float] | None = None,
    dataset_share: float = DEFAULT_DATASET_SHARE,
) -> DriftReport:
    """Compare the profiles of ``target`` days with those of ``reference`` days.

    Parameters
    ----------
    ws : the workspace (profiles built by ``assay profile build``).
    reference, target : (first day, last day), inclusive.
    by : a slice field the profiles were built with (``model_version``, ``prompt_template``,
        ``locale``, ``platform``), or None for whole tenants.
    tenant : one tenant, or None for every tenant.
    columns : the columns to compare (default every numeric and categorical column).
    thresholds : overrides of :data:`DEFAULT_THRESHOLDS`.
    dataset_share : share of drifted columns at which a dataset has drifted.

    Returns
    -------
    DriftReport
    """
    from assay.profiles import load_profiles

    for name, (first, last) in (("reference", reference), ("target", target)):
        if first > last:
            raise UsageError(
                f"the {name} range starts after it ends (got {first}..{last}); swap the days"
            )
    if not 0.0 < dataset_share <= 1.0:
        raise UsageError(f"dataset_share must be in (0, 1] (got {dataset_share!r})")
    field_name = by or ""
    ref = {
        (p.tenant_id, p.slice_value): p
        for p in load_profiles(
            ws, since=reference[0], until=reference[1], tenant=tenant, slice_field=field_name
        )
    }
    cur = {
        (p.tenant_id, p.slice_value): p
        for p in load_profiles(
            ws, since=target[0], until=target[1], tenant=tenant, slice_field=field_name
        )
    }
    report = DriftReport(reference, target, by)
    limits = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    for key in sorted(set(ref) | set(cur), key=lambda k: (k[0], str(k[1]))):
        if key not in ref or key not in cur:
            where = "reference" if key not in ref else "target"
            report.skipped.append((key[0], key[1], f"no profile in the {where} range"))
            continue
        drifted = compared = 0
        for name, rc in sorted(ref[key].columns.items()):
            cc = cur[key].columns.get(name)
            if cc is None or rc.kind == "count" or (columns is not None and name not in columns):
                continue
            stats = _column_stats(rc, cc)
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
    return report


def _column_stats(ref: Any, cur: Any) -> dict[str, float] | None:
    """The drift statistics of one column's two profiles; None when a side has no value."""
    if ref.kind == "numeric":
        rs, cs = ref.sketch(), cur.sketch()
        if rs is None or cs is None:
            return None
        return numeric_stats_sketch(rs, cs, ref_missing=ref.nulls, cur_missing=cur.nulls)
    if not ref.items or not cur.items:
        return None
    return categorical_stats(
        dict(ref.items), dict(cur.items), ref_missing=ref.nulls, cur_missing=cur.nulls
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

    title = (
        f"Drift: {report.target[0]}..{report.target[1]} against "
        f"{report.reference[0]}..{report.reference[1]}" + (f", by {report.by}" if report.by else "")
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
