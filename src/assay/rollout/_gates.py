"""Gates: the declarative rules a rollout is judged by, read from a TOML gates file.

A gates file holds optional ``[defaults]`` and one ``[[gate]]`` table per gate::

    [defaults]
    alpha = 0.01        # the chance this gate wrongly rolls back, over all its slices
    min_sample = 200    # no decision before this many units in each arm
    margin = 0.005      # how much worse (absolute rate) the candidate may be (default: per
                        # metric, DEFAULT_MARGINS)

    [[gate]]
    name = "handoff"
    metric = "handoff_rate"
    slices = ["all", "locale"]   # "all" is the whole release; tenant, locale, platform

Each gate compares one metric between the stable and the candidate release, on the whole
release and on each value of each slice field named, as a rate of counts:

- ``handoff_rate``: handed-off sessions over sessions;
- ``thumbs_down_rate``: events with ``feedback = -1`` over events with a feedback;
- ``error_rate``: ``error`` events over ``turn`` events;
- ``latency_p95``: the share of ``turn`` events slower than the stable release's p95 latency
  (5% for the stable release by construction; more for a slower candidate);
- ``cost_per_session``: the share of sessions costing more than the stable release's median
  session cost (half for the stable release; more for a dearer candidate);
- ``uncited_answer_rate``: answers (``turn`` events with a non-empty ``retrieved_doc_ids``)
  citing no document over answers: a RAG release that stops citing. Not in the default gates
  (a release without retrieval has no answers, and its gate would hold the rollout): name it
  in a gates file.

Without a file the :data:`DEFAULT_GATES` apply: the five metrics on the whole release and per
tenant, locale and platform.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from assay._errors import UsageError

GateMetric = Literal[
    "handoff_rate",
    "thumbs_down_rate",
    "error_rate",
    "latency_p95",
    "cost_per_session",
    "uncited_answer_rate",
]
GATE_METRICS: tuple[str, ...] = get_args(GateMetric)
#: "all" is the whole release; the others are slice fields of the events.
GATE_SLICES: tuple[str, ...] = ("all", "tenant", "locale", "platform")
_GATE_KEYS = ("name", "metric", "slices", "alpha", "min_sample", "margin")
_DEFAULT_KEYS = ("alpha", "min_sample", "margin")
#: Per gate: five gates wrongly roll back a rollout with probability at most 5 x 0.01 = 5%.
DEFAULT_ALPHA = 0.01
_HINT = "see the gates file format in docs/rollouts.md"


@dataclass(frozen=True)
class Gate:
    """One gate: a metric compared between stable and candidate, per slice.

    Attributes
    ----------
    name : str
        Names the gate in verdicts (unique in a file).
    metric : one of :data:`GATE_METRICS`
    slices : tuple of str
        ``"all"`` and/or slice fields (``tenant``, ``locale``, ``platform``).
    alpha : float
        The sequential test's error rate, in (0, 1).
    min_sample : int
        Units (sessions, events or turns) each arm needs before any decision.
    margin : float
        How much higher (absolute rate) the candidate may be and still pass, >= 0. In a
        gates file it defaults to the metric's :data:`DEFAULT_MARGINS`.
    """

    name: str
    metric: GateMetric
    slices: tuple[str, ...] = ("all",)
    alpha: float = 0.01
    min_sample: int = 200
    margin: float = 0.0


#: The default margin per metric, in rate units: the worsening tolerated. A gate promotes when
#: the candidate is shown not worse by more than this; with 0 only a significant improvement
#: promotes, and an equal candidate never would.
DEFAULT_MARGINS: dict[str, float] = {
    "handoff_rate": 0.005,
    # 2 points on a rate near 25% (8% relative): with 1 point, the stable arm's feedback,
    # which stops growing at the 100% step, bounds the interval above the margin in about
    # half the rollouts of an equal or better candidate (benchmarks/RESULTS.md).
    "thumbs_down_rate": 0.02,
    "error_rate": 0.005,
    "latency_p95": 0.01,
    "cost_per_session": 0.02,
    "uncited_answer_rate": 0.02,
}

DEFAULT_GATES: tuple[Gate, ...] = tuple(
    Gate(
        name=name,
        metric=metric,  # type: ignore[arg-type]
        slices=GATE_SLICES,
        margin=DEFAULT_MARGINS[metric],
    )
    for name, metric in (
        ("handoff", "handoff_rate"),
        ("thumbs_down", "thumbs_down_rate"),
        ("errors", "error_rate"),
        ("latency", "latency_p95"),
        ("cost", "cost_per_session"),
    )
)


def _fail(where: str, what: str) -> UsageError:
    return UsageError(f"gates file: {where}: {what}; {_HINT}")


def _number(where: str, key: str, value: object, *, low: float, high: float | None) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok and value >= low and (high is None or value < high):  # type: ignore[operator]
        return float(value)  # type: ignore[arg-type]
    bound = f"in [{low:g}, {high:g})" if high is not None else f">= {low:g}"
    raise _fail(where, f"{key} must be a number {bound} (got {str(value)[:40]!r})")


def _settings(where: str, table: Mapping[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    if "alpha" in table:
        out["alpha"] = _number(where, "alpha", table["alpha"], low=0.0, high=1.0)
        if out["alpha"] == 0:
            raise _fail(where, "alpha must be above 0 (got 0); 0.01 is the default")
    if "min_sample" in table:
        value = table["min_sample"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _fail(where, f"min_sample must be a whole number >= 1 (got {str(value)[:40]!r})")
        out["min_sample"] = value
    if "margin" in table:
        out["margin"] = _number(where, "margin", table["margin"], low=0.0, high=1.0)
    return out


def _unknown(where: str, table: Mapping[str, Any], known: tuple[str, ...]) -> None:
    extra = sorted(set(table) - set(known))
    if extra:
        raise _fail(
            where,
            f"unknown key {extra[0][:40]!r} (expected some of {', '.join(known)})",
        )


def parse_gates(text: str) -> tuple[Gate, ...]:
    """The gates of a gates file's text, validated.

    Raises
    ------
    UsageError
        For TOML that does not parse, an unknown key, metric or slice, a missing name or
        metric, a duplicate name, a value out of range, or a file without gates.

    Examples
    --------
    >>> text = '[[gate]]\\nname = "h"\\nmetric = "handoff_rate"\\nslices = ["locale"]'
    >>> [gate] = parse_gates(text)
    >>> gate.metric, gate.slices, gate.alpha, gate.min_sample
    ('handoff_rate', ('locale',), 0.01, 200)
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"gates file: not valid TOML ({exc}); {_HINT}") from None
    _unknown("top level", data, ("defaults", "gate"))
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise _fail("[defaults]", "must be a table")
    _unknown("[defaults]", defaults, _DEFAULT_KEYS)
    base = _settings("[defaults]", defaults, {"alpha": DEFAULT_ALPHA, "min_sample": 200})
    tables = data.get("gate", [])
    if not isinstance(tables, list) or not tables:
        # `gate = 3` is a value, not an array of tables: the same fix.
        raise _fail("top level", "expected at least one [[gate]] table (got none)")
    gates: list[Gate] = []
    for i, table in enumerate(tables, start=1):
        where = f"gate {i}"
        if not isinstance(table, dict):
            raise _fail(where, "must be a table ([[gate]] with name = ..., metric = ...)")
        _unknown(where, table, _GATE_KEYS)
        name = table.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 80:
            raise _fail(where, f"name must be a non-empty string (got {str(name)[:40]!r})")
        where = f"gate {i} ({name})"
        if any(g.name == name for g in gates):
            raise _fail(where, "the name is used twice; give each gate its own name")
        metric = table.get("metric")
        if metric not in GATE_METRICS:
            raise _fail(
                where,
                f"metric must be one of {', '.join(GATE_METRICS)} (got {str(metric)[:40]!r})",
            )
        slices = table.get("slices", ["all"])
        if (
            not isinstance(slices, list)
            or not slices
            or any(s not in GATE_SLICES for s in slices)
            or len(set(slices)) != len(slices)
        ):
            raise _fail(
                where,
                f"slices must be a list of distinct names from {', '.join(GATE_SLICES)} "
                f"(got {str(slices)[:60]})",
            )
        settings = _settings(where, table, base)
        settings.setdefault("margin", DEFAULT_MARGINS[metric])
        gates.append(Gate(name=name, metric=metric, slices=tuple(slices), **settings))
    return tuple(gates)


__all__ = [
    "DEFAULT_GATES",
    "DEFAULT_MARGINS",
    "GATE_METRICS",
    "GATE_SLICES",
    "Gate",
    "GateMetric",
    "parse_gates",
]
