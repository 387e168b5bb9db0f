"""Event rows for the models tests, built on the metrics tests' row builder."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from metrics_data import event

from assay.models import Models

#: A fixture that makes Models over the given stored-event rows.
ModelsFactory = Callable[[Sequence[dict[str, Any]]], Models]


def ev(when: dt.datetime, **fields: Any) -> dict[str, Any]:
    """One stored event at exactly ``when`` (UTC), its event_date the UTC day."""
    row = event(when.date(), **fields)
    row["event_time"] = when
    return row
