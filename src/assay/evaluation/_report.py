"""The slice report object and its renderings: Arrow, pandas, Markdown and offline HTML.

The HTML is one self-contained file: inline CSS and inline SVG charts (ROC, precision-recall and
a reliability diagram) drawn here, no JavaScript, no external fonts, styles or links, so it opens
offline and can be mailed or attached to a ticket as is.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from assay.evaluation._rank import rank

_F64 = npt.NDArray[np.float64]
_MAX_POINTS = 400
_RELIABILITY_BINS = 10
_COLORS = ("#1f4e79", "#c0392b", "#d68910", "#117a65", "#7d3c98")


@dataclass(frozen=True)
class SliceSubset:
    """The rows of one slice (original positions), kept for the plots of flagged slices."""

    rows: npt.NDArray[np.int64]


@dataclass(frozen=True)
class SliceReport:
    """What :func:`~assay.evaluation.slice_report` found: one row per slice and metric.

    Attributes
    ----------
    table : pyarrow.Table
        Columns ``feature``, ``value``, ``metric``, ``support``, ``estimate``, ``ci_low``,
        ``ci_high``, ``overall``, ``gap``, ``p_value``, ``flagged``.
    overall : dict of str to (estimate, ci_low, ci_high)
        Each metric on all rows, with its bootstrap interval (None without replicates).
    higher_is_better : dict of str to bool
        The direction of each metric used for the flags.
    settings : dict
        ``min_support``, ``n_boot``, ``alpha``, ``pairs`` and ``seed`` of the run.
    """

    table: pa.Table
    overall: dict[str, tuple[float, float | None, float | None]]
    higher_is_better: dict[str, bool]
    y_true: npt.NDArray[np.bool_] = field(repr=False)
    y_score: _F64 = field(repr=False)
    sample_weight: _F64 | None = field(repr=False)
    flagged_subsets: dict[tuple[str, str | None], SliceSubset] = field(repr=False)
    settings: dict[str, Any]

    @property
    def n_flagged(self) -> int:
        """Rows of the report (slice and metric) that are flagged."""
        return int(sum(self.table.column("flagged").to_pylist()))

    def flagged(self) -> pa.Table:
        """The flagged rows of the report, most significant first."""
        rows = [r for r in self.table.to_pylist() if r["flagged"]]
        rows.sort(key=lambda r: (r["p_value"], r["feature"], r["value"] or ""))
        return pa.Table.from_pylist(rows, schema=self.table.schema)

    def to_arrow(self) -> pa.Table:
        """The report as a ``pyarrow.Table``."""
        return self.table

    def to_pandas(self) -> Any:
        """The report as a ``pandas.DataFrame`` (needs pandas)."""
        return self.table.to_pandas()

    def to_markdown(self) -> str:
        """The report as a GitHub Markdown table, flagged rows marked **yes**."""
        lines = [
            "| " + " | ".join(self.table.column_names) + " |",
            "|" + "|".join("---" for _ in self.table.column_names) + "|",
        ]
        for row in self.table.to_pylist():
            lines.append("| " + " | ".join(_md_cell(k, v) for k, v in row.items()) + " |")
        return "\n".join(lines) + "\n"

    def to_html(self, *, title: str = "Slice report") -> str:
        """A self-contained HTML page: summary, plots, flagged slices and the full table.

        The page has no scripts and no external references; the three charts (ROC,
        precision-recall, reliability) are inline SVG, for all rows and for up to four flagged
        slices.
        """
        return _render_html(self, title)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _md_cell(key: str, value: Any) -> str:
    text = _fmt(value).replace("|", "\\|")
    return f"**{text}**" if key == "flagged" and text else text


# -- curves ------------------------------------------------------------------------------------


def _thin(x: _F64, y: _F64) -> tuple[_F64, _F64]:
    if len(x) <= _MAX_POINTS:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, _MAX_POINTS).round().astype(np.int64))
    return x[keep], y[keep]


def _counts_at_thresholds(y: npt.NDArray[np.bool_], s: _F64, w: _F64) -> tuple[_F64, _F64] | None:
    """Cumulative weighted true and false positives at each distinct score, high to low."""
    r = rank(s)
    tp, fp = r.class_sums(y[r.order], w[r.order])
    tps, fps = np.cumsum(tp), np.cumsum(fp)
    if tps[-1] <= 0 or fps[-1] <= 0:
        return None
    return tps, fps


def roc_points(y: npt.NDArray[np.bool_], s: _F64, w: _F64) -> tuple[_F64, _F64] | None:
    """False and true positive rates of the ROC curve (None with one class only)."""
    counts = _counts_at_thresholds(y, s, w)
    if counts is None:
        return None
    tps, fps = counts
    return _thin(np.r_[0.0, fps / fps[-1]], np.r_[0.0, tps / tps[-1]])


def pr_points(y: npt.NDArray[np.bool_], s: _F64, w: _F64) -> tuple[_F64, _F64] | None:
    """Recall and precision of the precision-recall curve (None with one class only)."""
    counts = _counts_at_thresholds(y, s, w)
    if counts is None:
        return None
    tps, fps = counts
    return _thin(np.r_[0.0, tps / tps[-1]], np.r_[1.0, tps / (tps + fps)])


def reliability_points(y: npt.NDArray[np.bool_], s: _F64, w: _F64) -> tuple[_F64, _F64] | None:
    """Mean score and observed positive rate in 10 equal-width bins of [0, 1] (non-empty ones).

    None when the scores are not probabilities in [0, 1].
    """
    if s.min() < 0 or s.max() > 1:
        return None
    # Bins closed on the right, as expected_calibration_error and scikit-learn's
    # calibration_curve: (e_b, e_b+1], the first also holding 0.
    edges = np.linspace(0.0, 1.0, _RELIABILITY_BINS + 1)
    b = np.searchsorted(edges[1:-1], s, side="left")
    weight = np.bincount(b, weights=w, minlength=_RELIABILITY_BINS)
    mean_score = np.bincount(b, weights=w * s, minlength=_RELIABILITY_BINS)
    positives = np.bincount(b, weights=np.where(y, w, 0.0), minlength=_RELIABILITY_BINS)
    used = weight > 0
    return mean_score[used] / weight[used], positives[used] / weight[used]


# -- SVG -----------------------------------------------------------------------------------------

_W, _H, _PAD_L, _PAD_R, _PAD_T, _PAD_B = 360, 320, 48, 12, 28, 44


def _px(x: float, y: float) -> tuple[float, float]:
    return (
        _PAD_L + x * (_W - _PAD_L - _PAD_R),
        _H - _PAD_B - y * (_H - _PAD_T - _PAD_B),
    )


def svg_chart(
    title: str,
    x_label: str,
    y_label: str,
    series: Sequence[tuple[str, _F64, _F64]],
    *,
    diagonal: bool = False,
    markers: bool = False,
    note: str | None = None,
) -> str:
    """A small line chart on [0, 1] x [0, 1] as an inline ``<svg>`` element."""
    parts = [
        f'<svg viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img" '
        f'aria-label="{html.escape(title)}">',
        f'<text x="{_W / 2}" y="18" class="t">{html.escape(title)}</text>',
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x0, y0 = _px(tick, 0)
        _, y1 = _px(0, tick)
        parts.append(f'<line x1="{x0:.1f}" y1="{_PAD_T}" x2="{x0:.1f}" y2="{y0:.1f}" class="g"/>')
        parts.append(
            f'<line x1="{_PAD_L}" y1="{y1:.1f}" x2="{_W - _PAD_R}" y2="{y1:.1f}" class="g"/>'
        )
        parts.append(f'<text x="{x0:.1f}" y="{y0 + 14:.1f}" class="k">{tick:g}</text>')
        parts.append(f'<text x="{_PAD_L - 6}" y="{y1 + 4:.1f}" class="k e">{tick:g}</text>')
    x_mid, _ = _px(0.5, 0)
    parts.append(f'<text x="{x_mid:.1f}" y="{_H - 8}" class="l">{html.escape(x_label)}</text>')
    _, y_mid = _px(0, 0.5)
    parts.append(
        f'<text x="12" y="{y_mid:.1f}" class="l" transform="rotate(-90 12 {y_mid:.1f})">'
        f"{html.escape(y_label)}</text>"
    )
    if diagonal:
        (ax, ay), (bx, by) = _px(0, 0), _px(1, 1)
        parts.append(f'<line x1="{ax}" y1="{ay}" x2="{bx}" y2="{by}" class="d"/>')
    for i, (label, xs, ys) in enumerate(series):
        color = _COLORS[i % len(_COLORS)]
        points = " ".join(
            f"{px:.1f},{py:.1f}" for px, py in (_px(a, b) for a, b in zip(xs, ys, strict=True))
        )
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="1.8">'
            f"<title>{html.escape(label)}</title></polyline>"
        )
        if markers:
            for a, b in zip(xs, ys, strict=True):
                cx, cy = _px(float(a), float(b))
                parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.5" fill="{color}"/>')
        lx, ly = _PAD_L + 8, _PAD_T + 14 + 14 * i
        parts.append(f'<rect x="{lx}" y="{ly - 8}" width="10" height="3" fill="{color}"/>')
        parts.append(f'<text x="{lx + 14}" y="{ly}" class="k s">{html.escape(label)}</text>')
    if note:
        parts.append(f'<text x="{_W / 2}" y="{_H / 2}" class="l">{html.escape(note)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1b1b1b}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#555}.charts{display:flex;flex-wrap:wrap;gap:12px}
.charts svg{border:1px solid #ddd;border-radius:4px;background:#fff}
table{border-collapse:collapse;font-size:13px}
th,td{padding:3px 8px;border-bottom:1px solid #e3e3e3;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.flag td{background:#fdecea}.ok{color:#117a65}.bad{color:#c0392b;font-weight:600}
svg text{font:11px system-ui,sans-serif;fill:#333}svg .t{font-size:13px;font-weight:600;
text-anchor:middle}svg .k{text-anchor:middle}svg .e{text-anchor:end}svg .s{text-anchor:start}
svg .l{text-anchor:middle}svg .g{stroke:#eee}svg .d{stroke:#999;stroke-dasharray:4 3}
"""


def _html_table(table: pa.Table) -> str:
    numeric = {
        c
        for c in table.column_names
        if pa.types.is_integer(table.schema.field(c).type)
        or pa.types.is_floating(table.schema.field(c).type)
    }
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.column_names)
    body = []
    for row in table.to_pylist():
        cls = ' class="flag"' if row.get("flagged") else ""
        cells = "".join(
            f"<td{' class=n' if c in numeric else ''}>{html.escape(_fmt(row[c]))}</td>"
            for c in table.column_names
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _render_html(report: SliceReport, title: str) -> str:
    y, s = report.y_true, report.y_score
    w = np.ones(len(y)) if report.sample_weight is None else report.sample_weight
    groups: list[tuple[str, npt.NDArray[np.int64] | None]] = [("all rows", None)]
    flagged = report.flagged()
    seen: set[tuple[str, str | None]] = set()
    for row in flagged.to_pylist():
        key = (row["feature"], row["value"])
        if key in seen or key not in report.flagged_subsets or len(groups) >= 5:
            continue
        seen.add(key)
        groups.append((f"{key[0]} = {key[1]}", report.flagged_subsets[key].rows))

    def series(fn: Any) -> list[tuple[str, _F64, _F64]]:
        out = []
        for label, rows in groups:
            pts = fn(y, s, w) if rows is None else fn(y[rows], s[rows], w[rows])
            if pts is not None:
                out.append((label, pts[0], pts[1]))
        return out

    roc = series(roc_points)
    pr = series(pr_points)
    rel = series(reliability_points)
    charts = [
        svg_chart(
            "ROC",
            "false positive rate",
            "true positive rate",
            roc,
            diagonal=True,
            note=None if roc else "needs both classes",
        ),
        svg_chart(
            "Precision-recall",
            "recall",
            "precision",
            pr,
            note=None if pr else "needs both classes",
        ),
        svg_chart(
            "Reliability",
            "mean score (10 equal-width bins)",
            "observed positive rate",
            rel,
            diagonal=True,
            markers=True,
            note=None if rel else "scores are not probabilities in [0, 1]",
        ),
    ]
    overall_rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td class=n>{_fmt(est)}</td>"
        f"<td class=n>{_fmt(low)} to {_fmt(high)}</td>"
        f"<td>{'higher' if report.higher_is_better[name] else 'lower'} is better</td></tr>"
        for name, (est, low, high) in report.overall.items()
    )
    st = report.settings
    n_pos = int(y.sum())
    verdict = (
        f'<p class="bad">{report.n_flagged} slice-metric row(s) significantly worse than '
        "overall.</p>"
        if report.n_flagged
        else '<p class="ok">No slice is significantly worse than overall.</p>'
    )
    flagged_html = _html_table(flagged) if flagged.num_rows else "<p>None.</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="meta">{len(y)} rows, {n_pos} positive; {st["n_boot"]} bootstrap replicates, intervals at
{1 - st["alpha"]:.0%}; flags: Benjamini-Hochberg at false discovery rate {st["alpha"]:g} over
one-sided bootstrap p-values, slices with at least {st["min_support"]} rows.</p>
{verdict}
<h2>Overall</h2>
<table><thead><tr><th>metric</th><th>estimate</th><th>interval</th><th>direction</th></tr>
</thead><tbody>{overall_rows}</tbody></table>
<h2>Curves</h2>
<div class="charts">
{"".join(charts)}
</div>
<h2>Flagged slices</h2>
{flagged_html}
<h2>All slices</h2>
{_html_table(report.table)}
</body></html>
"""


__all__ = [
    "SliceReport",
    "SliceSubset",
    "pr_points",
    "reliability_points",
    "roc_points",
    "svg_chart",
]
