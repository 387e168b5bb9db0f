"""Incremental builds from committed events equal a build from scratch: new days, late events
for an old day, replayed files (duplicates), forgotten tenants, --since, --until and changed
options."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from profiles_data import ingest, input_event, write_jsonl

import assay
from assay._errors import UsageError
from assay.profiles import (
    build_profiles,
    load_profiles,
    profile_events,
    profiles_path,
    read_profiles,
)

D = [dt.date(2026, 1, 5) + dt.timedelta(days=i) for i in range(4)]


def _batch(prefix: str, days: list[dt.date], users: int = 12) -> list[dict[str, Any]]:
    rows = []
    for day in days:
        for u in range(users):
            rows.append(
                input_event(
                    f"{prefix}-{day}-{u}",
                    day,
                    "acme" if u % 3 else "beta",
                    f"user{u}",
                    model_version="m1" if u < 10 else "m2",
                    intent=["book", "cancel"][u % 2],
                    latency_ms=float(10 * u + day.day),
                    feedback=[-1, 1][u % 2],
                )
            )
    return rows


def _scratch(root: Path) -> pa.Table:
    """The profiles of the workspace built from nothing."""
    with assay.Workspace.open(root) as ws:
        shutil.rmtree(profiles_path(ws))
        build_profiles(ws)
        return read_profiles(ws)


def test_incremental_build_equals_a_build_from_scratch(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    first = write_jsonl(_batch("a", D[:2]), tmp_path / "first.jsonl")
    ingest(root, [first])
    with assay.Workspace.open(root) as ws:
        s1 = build_profiles(ws)
        assert s1.days == (D[0], D[1])
        assert s1.days_rebuilt == 2
        assert s1.rows_written == read_profiles(ws).num_rows > 0
    # More: a new day, late events for the first day, and the first file again (duplicates).
    second = write_jsonl(_batch("b", [D[0], D[2]], users=5), tmp_path / "second.jsonl")
    ingest(root, [second, first])
    with assay.Workspace.open(root) as ws:
        s2 = build_profiles(ws)
        assert s2.days == (D[0], D[2])  # D[1] did not change: not rebuilt
        incremental = read_profiles(ws)
        events = ws.read("events")
        assert build_profiles(ws).days_rebuilt == 0  # nothing changed since
    assert incremental.equals(_scratch(root))
    # And both equal the profile of the stored events computed in memory.
    assert incremental.equals(profile_events(events))
    # The late events count on the first day, the replay does not count twice.
    rows = incremental.to_pylist()
    counts = {
        r["event_date"]: r["count"]
        for r in rows
        if r["column"] == "event_id" and r["slice_field"] == "" and r["tenant_id"] == "acme"
    }
    assert counts == {D[0]: 8 + 3, D[1]: 8, D[2]: 3}


def test_forget_removes_a_tenant_from_the_next_build(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    ingest(root, [write_jsonl(_batch("a", D[:2]), tmp_path / "a.jsonl")])
    ingest(root, [write_jsonl(_batch("b", [D[3]], users=3), tmp_path / "b.jsonl")])
    with assay.Workspace.open(root) as ws:
        build_profiles(ws)
        assert {r for r in read_profiles(ws)["tenant_id"].to_pylist()} == {"acme", "beta"}
        ws.forget("beta")
        summary = build_profiles(ws)
        assert set(summary.days) == set(D[:2]) | {D[3]}
        after = read_profiles(ws)
    assert set(after["tenant_id"].to_pylist()) == {"acme"}
    assert after.equals(_scratch(root))


def test_a_day_without_events_any_more_loses_its_profiles(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    only_beta = [r for r in _batch("a", [D[3]]) if r["tenant_id"] == "beta"]
    ingest(root, [write_jsonl(_batch("a", D[:1]) + only_beta, tmp_path / "a.jsonl")])
    with assay.Workspace.open(root) as ws:
        build_profiles(ws)
        ws.forget("beta")
        summary = build_profiles(ws)
        assert summary.days_removed == 1
        assert D[3] in summary.days
        assert set(read_profiles(ws)["event_date"].to_pylist()) == {D[0]}
        assert not (profiles_path(ws) / "days" / f"{D[3]}.parquet").exists()


def test_since_rebuilds_unchanged_days_and_until_defers_later_ones(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    ingest(root, [write_jsonl(_batch("a", D), tmp_path / "a.jsonl")])
    seen: list[tuple[int, int]] = []
    with assay.Workspace.open(root) as ws:
        s = build_profiles(ws, until=D[1], progress=lambda done, total: seen.append((done, total)))
        assert s.days == (D[0], D[1])
        assert seen == [(1, 2), (2, 2)]
        assert set(read_profiles(ws)["event_date"].to_pylist()) == {D[0], D[1]}
        assert build_profiles(ws).days == (D[2], D[3])  # deferred days come next time
        assert build_profiles(ws, since=D[2]).days == (D[2], D[3])
        assert build_profiles(ws, since=D[1], until=D[2]).days == (D[1], D[2])
        with pytest.raises(UsageError, match="swap them"):
            build_profiles(ws, since=D[2], until=D[1])
        assert read_profiles(ws, since=D[1], until=D[2])["event_date"].unique().to_pylist() == [
            D[1],
            D[2],
        ]


def test_changing_k_or_slices_rebuilds_every_day(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    ingest(root, [write_jsonl(_batch("a", D[:2]), tmp_path / "a.jsonl")])
    with assay.Workspace.open(root) as ws:
        build_profiles(ws, k=3, slices=("locale",))
        assert set(read_profiles(ws)["slice_field"].to_pylist()) == {"", "locale"}
        assert build_profiles(ws, k=3, slices=("locale",)).days_rebuilt == 0
        assert build_profiles(ws).days == (D[0], D[1])
        assert "locale" in set(read_profiles(ws)["slice_field"].to_pylist())
        assert "model_version" in set(read_profiles(ws)["slice_field"].to_pylist())
        state = json.loads((profiles_path(ws) / "state.json").read_text())
        assert state["options"]["k"] == 10
        assert state["events_version"] == ws.version("events")


def test_load_profiles_merges_days_per_tenant_and_slice(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    ingest(root, [write_jsonl(_batch("a", D[:3]), tmp_path / "a.jsonl")])
    with assay.Workspace.open(root) as ws:
        build_profiles(ws)
        whole = load_profiles(ws, since=D[0], until=D[1])
        assert [(s.tenant_id, s.slice_value, s.days) for s in whole] == [
            ("acme", "", 2),
            ("beta", "", 2),
        ]
        acme = whole[0].columns
        # acme: users 1,2,4,5,7,8,10,11 on each of two days.
        assert acme["event_id"].count == 16
        lat = acme["latency_ms"]
        assert (lat.min, lat.max) == (10.0 + D[0].day, 110.0 + D[1].day)
        # model_version slices of acme: m1 (6 users, < k) and m2 (2 users) fold into <OTHER>.
        by_model = load_profiles(
            ws, since=D[0], until=D[2], tenant="acme", slice_field="model_version"
        )
        assert [(s.slice_value, s.columns["event_id"].count) for s in by_model] == [("<OTHER>", 24)]
        assert load_profiles(ws, since=D[3], until=D[3]) == []
        with pytest.raises(UsageError, match="not sliced by"):
            load_profiles(ws, slice_field="intent")
        with pytest.raises(UsageError, match="swap them"):
            load_profiles(ws, since=D[2], until=D[0])
