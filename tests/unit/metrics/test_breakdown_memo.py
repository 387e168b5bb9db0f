"""Breakdown answers are kept per engine, and go with it."""

from __future__ import annotations

import datetime as dt
import gc
import sys
import weakref
from pathlib import Path

import ibis

sys.path.insert(0, str(Path(__file__).parent))

from metrics_data import event, to_table

from assay.metrics import first_seen

D0 = dt.date(2026, 1, 1)


def _rows(version: str) -> list[dict[str, object]]:
    return [event(D0, model_version=version)]


def test_an_engine_and_its_kept_answers_are_freed_when_the_engine_is_dropped() -> None:
    con = ibis.duckdb.connect()
    events = con.create_table("events", to_table(_rows("v1")))
    first = first_seen(events, ["model_version"], tenant="t1", until=D0)
    assert first.column("value").to_pylist() == ["v1"]
    probe = weakref.ref(con)
    con.disconnect()
    del con, events
    gc.collect()
    assert probe() is None  # nothing module-wide holds the engine through its answers


def test_two_engines_with_the_same_table_keep_their_own_answers() -> None:
    answers = []
    for version in ("v1", "v2"):
        con = ibis.duckdb.connect()
        events = con.create_table("events", to_table(_rows(version)))
        answers.append(first_seen(events, ["model_version"], tenant="t1", until=D0))
        con.disconnect()
    assert [a.column("value").to_pylist() for a in answers] == [["v1"], ["v2"]]
