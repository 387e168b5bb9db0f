"""Held-out predictions of a model version, kept next to it in the registry.

Training writes them (``launch/holdout.json`` in the version's run): the test part's true and
predicted labels, the positive class's scores where there is one, and the sensitive attributes
the rows carry (never text, never ids). The launch gate (:mod:`assay.rollout`) reads them for
criteria such as an intent's misrouted rate or a fairness gap between locales.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assay._errors import UsageError

HOLDOUT_JSON = "launch/holdout.json"


@dataclass(frozen=True)
class Holdout:
    """Held-out predictions of one version: true and predicted labels (strings; booleans and
    0/1 as ``"1"``/``"0"``), optional scores of the positive class, sensitive attributes."""

    y_true: tuple[str, ...]
    y_pred: tuple[str, ...]
    y_score: tuple[float, ...] | None = None
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        y_true: Sequence[Any],
        y_pred: Sequence[Any],
        *,
        y_score: Sequence[float] | None = None,
        groups: Mapping[str, Sequence[Any]] | None = None,
    ) -> Holdout:
        n = len(y_true)
        parts = {"y_pred": len(y_pred)}
        if y_score is not None:
            parts["y_score"] = len(y_score)
        for g, values in (groups or {}).items():
            parts[f"groups[{g}]"] = len(values)
        wrong = {k: v for k, v in parts.items() if v != n}
        if wrong or n == 0:
            raise UsageError(
                f"held-out predictions need one value per row in every column (y_true has {n} "
                f"rows; differing: {wrong}); pass aligned, non-empty columns"
            )
        return cls(
            tuple(map(_label, y_true)),
            tuple(map(_label, y_pred)),
            None if y_score is None else tuple(float(s) for s in y_score),
            {str(g): tuple(map(str, v)) for g, v in (groups or {}).items()},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "y_true": list(self.y_true),
            "y_pred": list(self.y_pred),
            "y_score": None if self.y_score is None else list(self.y_score),
            "groups": {g: list(v) for g, v in self.groups.items()},
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Holdout:
        return cls.of(
            raw["y_true"], raw["y_pred"], y_score=raw.get("y_score"), groups=raw.get("groups")
        )


def _label(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "1" if value else "0"
    if isinstance(value, int | np.integer):
        return str(int(value))
    return str(value)
