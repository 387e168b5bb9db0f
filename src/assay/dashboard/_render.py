"""Server-side rendering of the dashboard's pages (Jinja2, autoescaped), and the page conventions.

Pages
-----
Every page template extends ``base.html`` and fills ``{% block content %}`` (and may set
``{% block title %}``). Render one with :func:`render`
(``render(request, "fleet.html", rows=...)``): the context always holds ``user`` (the
signed-in :class:`~assay.dashboard.UiUser`, or None),
``csrf`` (its CSRF token, "" when signed out) and ``request``. Every form that changes state is
``method="post"`` and carries ``<input type="hidden" name="csrf_token" value="{{ csrf }}">``.
No inline ``<script>`` that executes, no ``style=""`` attribute, no ``on*=""`` handler: the
Content-Security-Policy (see ``_auth.py``) refuses them. Scripts and styles are files under
``static/`` (served at ``/ui/static/``).

Charts (the contract between the pages and ``static/charts.js``)
-----------------------------------------------------------------
A chart is a ``<figure class="chart" data-chart="KIND">`` where KIND is ``line``, ``band``,
``spark`` or ``heat``. Its data is EITHER fetched from ``data-src="/ui/...json"`` (same origin,
JSON) OR, when there is no ``data-src``, read from the figure's first child
``<script type="application/json">`` (data, not code: the CSP allows it as it never runs).
Write the data with Jinja's ``tojson`` filter, which escapes ``<``, ``>`` and ``&``. The macro
``chart(...)`` in ``templates/_macros.html`` writes the figure, its data, a caption, the same data
as an HTML table (``<details><summary>Data</summary><table>``) and a CSV download link.

The JSON of each kind (numbers may be null for "no value"; ``x`` values are ISO dates or labels)::

    line, band: {"x": [...], "series": [{"name": str, "values": [num|null, ...]}, ...],
                 "band": {"lower": [...], "upper": [...]} | null,   # expected band (band kind)
                 "flags": [x, ...],        # x values marked anomalous (drawn with a shape too)
                 "events": [{"x": x, "label": str}, ...],   # releases: vertical rules on x
                 "format": "number" | "percent" | "ms" | "usd", "y_label": str}
    spark:      {"x": [...], "series": [{"name": str, "values": [...]}], "format": ...}
    heat:       {"x": [column labels], "y": [row labels], "values": [[num|null, ...], ...],
                 "format": "percent", "x_label": str, "y_label": str}

Percent values are fractions (0.25 is drawn as 25%). A chart must read without colour alone:
series are told apart by their label and dash, anomalous days by a marker shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


#: Shown for a missing value (an en dash).
NO_VALUE = "\u2013"


def _percent(value: float | None, digits: int = 1) -> str:
    return NO_VALUE if value is None else f"{value * 100:.{digits}f}%"


def _number(value: float | None, digits: int = 1) -> str:
    if value is None:
        return NO_VALUE
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.{digits}f}"


ENV.filters["percent"] = _percent
ENV.filters["number"] = _number
ENV.filters["fixed"] = lambda value, digits=1: NO_VALUE if value is None else f"{value:,.{digits}f}"
ENV.filters["zip"] = lambda a, b: list(zip(a, b, strict=False))
# (label, [v, ...]) -> [label, v, ...]: a row of a heat map's data table.
ENV.filters["flatten"] = lambda pair: [pair[0], *pair[1]]


def render(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """``template`` rendered with ``context`` plus ``request``, ``user`` and ``csrf`` (and
    ``nav``, the current section of the main menu, None unless given)."""
    user = getattr(request.state, "ui_user", None)
    context.setdefault("nav", None)
    page = ENV.get_template(template).render(
        request=request,
        user=user,
        csrf=user.csrf if user is not None else "",
        **context,
    )
    return HTMLResponse(page, status_code=status_code)
