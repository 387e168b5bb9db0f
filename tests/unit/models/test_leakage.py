"""The leakage guard: time_split, leakage_probe, LeakageError."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import random
import types
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from models_data import ModelsFactory, ev
from sklearn.metrics import roc_auc_score

from assay import AssayError, UsageError
from assay.models import LeakageError, leakage_probe, time_split

UTC = dt.UTC
D0 = dt.date(2026, 4, 1)


def dataset_like(
    days: list[int], users: list[str] | None = None, window: int | None = 1
) -> pa.Table:
    """A table shaped like a dataset: one row per given day offset, noon prediction times."""
    n = len(days)
    on = [D0 + dt.timedelta(days=d) for d in days]
    table = pa.table(
        {
            "tenant_id": ["t"] * n,
            "session_id": [f"s{i}" for i in range(n)],
            "user_id": users or [f"u{i}" for i in range(n)],
            "day": pa.array(on, pa.date32()),
            "prediction_time": pa.array(
                [dt.datetime.combine(d, dt.time(12), UTC) for d in on],
                pa.timestamp("us", tz="UTC"),
            ),
            "label": [i % 2 == 0 for i in range(n)],
        }
    )
    if window is None:
        return table
    return table.replace_schema_metadata({b"assay.label_window_days": str(window).encode()})


def sessions(part: pa.Table) -> list[str]:
    return [str(s) for s in part.column("session_id").to_pylist()]


# -- time_split --------------------------------------------------------------------------------


def test_time_split_by_calendar_days_with_label_windows_purged() -> None:
    # Days 0..9, one session each at noon; window 1 day.
    parts = time_split(dataset_like(list(range(10))), valid_days=3, test_days=2)
    # test: days 8, 9; valid: 5, 6, 7; train: 0..4 less day 4 (its label window, to day 5
    # noon, reaches into the validation part).
    assert sessions(parts.test) == ["s8", "s9"]
    assert sessions(parts.valid) == ["s5", "s6", "s7"]
    assert sessions(parts.train) == ["s0", "s1", "s2", "s3"]
    # Without a window in the metadata nothing is purged.
    parts = time_split(dataset_like(list(range(10)), window=None), valid_days=3, test_days=2)
    assert [p.num_rows for p in parts] == [5, 3, 2]


def test_time_split_refuses_an_empty_part_and_lists_the_days() -> None:
    with pytest.raises(UsageError) as info:
        time_split(dataset_like([0, 1, 2, 9], window=None), valid_days=3, test_days=1)
    message = str(info.value)
    assert "valid empty" in message
    assert "4 day(s) with sessions: 2026-04-01, 2026-04-02, 2026-04-03, 2026-04-10" in message
    assert "use fewer valid/test days" in message
    with pytest.raises(UsageError, match="valid_days must be a whole number"):
        time_split(dataset_like([0, 1]), valid_days=0)


def test_time_split_user_disjoint_removes_held_out_users_from_train() -> None:
    users = ["a", "b", "c", "a", "d", "b"]
    table = dataset_like([0, 1, 2, 3, 4, 5], users=users, window=None)
    plain = time_split(table, valid_days=1, test_days=1)
    assert sessions(plain.train) == ["s0", "s1", "s2", "s3"]
    disjoint = time_split(table, valid_days=1, test_days=1, user_disjoint=True)
    # valid holds d (day 4), test holds b (day 5): b's day-1 session leaves train.
    assert sessions(disjoint.train) == ["s0", "s2", "s3"]
    assert sessions(disjoint.valid) == ["s4"]
    assert sessions(disjoint.test) == ["s5"]


def test_time_split_without_test_days() -> None:
    parts = time_split(dataset_like([0, 1, 2, 3], window=None), valid_days=1, test_days=0)
    assert [p.num_rows for p in parts] == [3, 1, 0]


@settings(max_examples=60, deadline=None)
@given(
    days=st.lists(st.integers(0, 30), min_size=1, max_size=60),
    users=st.data(),
    valid_days=st.integers(1, 5),
    test_days=st.integers(0, 5),
    disjoint=st.booleans(),
)
def test_time_split_orders_parts_and_keeps_users_apart(
    days: list[int], users: st.DataObject, valid_days: int, test_days: int, disjoint: bool
) -> None:
    names = users.draw(st.lists(st.sampled_from("abcde"), min_size=len(days), max_size=len(days)))
    table = dataset_like(days, users=names)
    try:
        parts = time_split(
            table, valid_days=valid_days, test_days=test_days, user_disjoint=disjoint
        )
    except UsageError as exc:
        refused: str | None = str(exc)
    else:
        refused = None
    if refused is not None:
        assert "empty" in refused
        return
    last = D0 + dt.timedelta(days=max(days))
    test_start = last - dt.timedelta(days=test_days - 1) if test_days else last + dt.timedelta(1)
    valid_start = test_start - dt.timedelta(days=valid_days)
    for row in parts.test.to_pylist():
        assert row["day"] >= test_start
    for row in parts.valid.to_pylist():
        assert valid_start <= row["day"] < test_start
    for row in parts.train.to_pylist():
        assert row["prediction_time"] + dt.timedelta(days=1) <= dt.datetime.combine(
            valid_start, dt.time(), UTC
        )
    held = {u for p in (parts.valid, parts.test) for u in p.column("user_id").to_pylist()}
    if disjoint:
        assert not held & set(parts.train.column("user_id").to_pylist())
    ids = [s for p in parts for s in sessions(p)]
    assert len(ids) == len(set(ids))


# -- the probe ---------------------------------------------------------------------------------


def test_numeric_probe_is_the_rank_auc_in_the_better_direction() -> None:
    rng = np.random.default_rng(3)
    y = rng.random(200) < 0.3
    x = np.where(y, rng.normal(-1.0, 1.0, 200), rng.normal(0.0, 1.0, 200))
    x[::7] = np.nan
    valid = pa.table({"x": x, "label": y})
    report = leakage_probe(valid, valid, features=(["x"], []), threshold=0.99)
    # Missing values rank below every present one.
    score = np.where(np.isnan(x), np.nanmin(x) - 1.0, x)
    want = max(roc_auc_score(y, score), roc_auc_score(y, -score))
    assert report.table.column("auc").to_pylist()[0] == pytest.approx(want, abs=1e-12)
    assert report.ok


def test_categorical_probe_is_a_target_encoding_fit_on_train() -> None:
    train = pa.table(
        {"c": ["a", "a", "b", "b", None, "a"], "label": [True, False, False, False, True, True]}
    )
    valid = pa.table({"c": ["a", "b", "z", None], "label": [True, False, False, True]})
    report = leakage_probe(train, valid, features=([], ["c"]))
    # prior 3/6; a: (2 + 0.5) / 4, b: 0.5 / 3, missing: 1.5 / 2, unseen z: 0.5.
    encoded = [2.5 / 4, 0.5 / 3, 0.5, 1.5 / 2]
    want = roc_auc_score([1, 0, 0, 1], encoded)
    row = report.table.to_pylist()[0]
    assert row["auc"] == pytest.approx(want)
    assert row["auc"] == 1.0
    assert row["flagged"]
    assert "validation AUC 1.000 >= 0.95" in row["reason"]


def test_a_feature_present_for_one_class_only_is_flagged() -> None:
    y = [True] * 10 + [False] * 40
    x = [1.0] * 5 + [None] * 5 + [None] * 40
    table = pa.table({"x": pa.array(x, pa.float64()), "label": y})
    row = leakage_probe(table, table, features=(["x"], [])).table.to_pylist()[0]
    assert row["present_positive"] == 0.5
    assert row["present_negative"] == 0.0
    assert "present only for positives" in row["reason"]
    # Absence by chance is plausible when the other class is small: 2 positives, 10% rate.
    y = [True] * 2 + [False] * 40
    x = [None, None] + [1.0] * 4 + [None] * 36
    table = pa.table({"x": pa.array(x, pa.float64()), "label": y})
    row = leakage_probe(table, table, features=(["x"], [])).table.to_pylist()[0]
    assert row["present_positive"] == 0.0
    assert "present only" not in (row["reason"] or "")


def _world(rows_out: list[dict[str, Any]], *, seed: int) -> None:
    """Sessions over 30 days with a thumbs-down that depends weakly on latency; the CRM flow
    back-fills ``crm_ticket`` on the session_start of most thumbs-down sessions."""
    rng = random.Random(seed)
    start = dt.datetime(2026, 4, 1, tzinfo=UTC)
    for i in range(360):
        user = f"u{rng.randrange(60)}"
        t = start + dt.timedelta(days=i // 12, minutes=rng.randrange(1200))
        slow = rng.random() < 0.3
        down = rng.random() < (0.45 if slow else 0.15)
        sess = {"session": f"s{i}", "user": user, "tenant": "t1"}
        attrs = [("plan", rng.choice(["free", "pro"]))]
        if down and rng.random() < 0.7:
            attrs.append(("crm_ticket", "open"))
        rows_out.append(ev(t, type="session_start", attributes=attrs, **sess))
        for k in range(rng.randint(1, 3)):
            rows_out.append(
                ev(
                    t + dt.timedelta(minutes=1 + k),
                    type="turn",
                    turn_index=k,
                    latency_ms=rng.uniform(3000, 6000) if slow else rng.uniform(200, 2500),
                    intent=rng.choice(["a", "b", "oos"]),
                    locale=rng.choice(["en", "fr"]),
                    **sess,
                )
            )
        if down:
            rows_out.append(ev(t + dt.timedelta(minutes=8), type="feedback", feedback=-1, **sess))
        elif rng.random() < 0.3:
            rows_out.append(ev(t + dt.timedelta(minutes=8), type="feedback", feedback=1, **sess))


def test_probe_catches_a_planted_leaky_attribute_only_when_opted_in(
    models_over: ModelsFactory,
) -> None:
    rows: list[dict[str, Any]] = []
    _world(rows, seed=11)
    m = models_over(rows)

    opted = m.dataset(attributes=["crm_ticket", "plan"])
    parts = time_split(opted, valid_days=7, test_days=7)
    report = leakage_probe(parts.train, parts.valid)
    assert report.flagged == ["attr_crm_ticket"]
    crm = next(r for r in report.table.to_pylist() if r["feature"] == "attr_crm_ticket")
    assert crm["present_negative"] == 0.0
    assert crm["present_positive"] > 0.5
    with pytest.raises(LeakageError) as info:
        report.raise_if_flagged()
    assert isinstance(info.value, AssayError)
    assert info.value.report is report
    text = str(info.value)
    assert "attr_crm_ticket (categorical)" in text
    assert "present only for positives" in text
    assert "leave the key out of attributes=" in text

    plain = m.dataset()
    parts = time_split(plain, valid_days=7, test_days=7)
    report = leakage_probe(parts.train, parts.valid)
    assert report.ok, report.message()
    report.raise_if_flagged()
    assert "attr_crm_ticket" not in report.table.column("feature").to_pylist()
    assert json.loads(report.table.schema.metadata[b"assay.threshold"]) == 0.95


def test_probe_arguments_are_checked() -> None:
    t = pa.table({"x": [1.0, 2.0], "label": [True, False]})
    with pytest.raises(UsageError, match=r"threshold must be a number in \(0.5, 1\]"):
        leakage_probe(t, t, threshold=0.3, features=(["x"], []))
    with pytest.raises(UsageError, match="feature 'y' is not a column"):
        leakage_probe(t, t, features=(["y"], []))
    with pytest.raises(UsageError, match=r"assay\.features\.numeric"):
        leakage_probe(t, t)


def test_models_all_lists_every_public_name_and_each_imports() -> None:
    module = importlib.import_module("assay.models")
    exported = set(module.__all__)
    assert len(exported) == len(module.__all__)
    for item in exported:
        assert hasattr(module, item), item
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType) and n != "annotations"
    }
    assert public <= exported, sorted(public - exported)
