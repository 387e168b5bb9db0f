"""Stored reference profiles: frozen copies of stored days, profiles of an events file (checked
against a plain-Python profile), pooling over tenants, names, listing and deleting."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from profiles_data import ingest, input_event, reference, write_jsonl

import assay
from assay._errors import NotFoundError, UsageError
from assay.profiles import (
    DEFAULT_SLICES,
    OTHER,
    POOLED,
    PROFILE_SCHEMA,
    build_profiles,
    check_reference_name,
    column_profile,
    delete_reference,
    list_references,
    load_profiles,
    load_reference,
    read_profiles,
    read_reference,
    reference_info,
    references_path,
    save_reference,
    save_reference_events,
)

D = [dt.date(2026, 1, 5) + dt.timedelta(days=i) for i in range(4)]


def _events(prefix: str, days: list[dt.date], users: int = 12) -> list[dict[str, Any]]:
    """Per day, ``users`` events: users 0, 3, 6, 9 in tenant beta, the others in acme."""
    return [
        input_event(
            f"{prefix}-{day}-{u}",
            day,
            "beta" if u % 3 == 0 else "acme",
            f"user{u}",
            model_version="m1" if u < 10 else "m2",
            intent=["book", "cancel"][u % 2],
            latency_ms=float(10 * u + day.day),
        )
        for day in days
        for u in range(users)
    ]


def _workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    ingest(root, [write_jsonl(_events("a", D[:3]), tmp_path / "a.jsonl")])
    with assay.Workspace.open(root) as ws:
        build_profiles(ws)
    return root


def _key(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["event_date"], r["tenant_id"], r["slice_field"], r["slice_value"], r["column"])


# -- from stored days ---------------------------------------------------------------------------


def test_a_reference_from_days_is_a_frozen_copy_of_their_profiles(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    with assay.Workspace.open(root) as ws:
        saved = read_profiles(ws, since=D[0], until=D[1])
        info = save_reference(ws, "train-jan", since=D[0], until=D[1])
        assert read_reference(ws, "train-jan").equals(saved)
        # Later: a user is forgotten, late events land on a reference day, profiles rebuilt.
        ws.forget("acme", "user1")
    ingest(root, [write_jsonl(_events("late", [D[0]], users=5), tmp_path / "late.jsonl")])
    with assay.Workspace.open(root) as ws:
        build_profiles(ws)
        now = read_profiles(ws, since=D[0], until=D[1])
        assert not now.equals(saved)  # the workspace's days did change
        assert read_reference(ws, "train-jan").equals(saved)  # the reference did not
        assert reference_info(ws, "train-jan") == info
    # Hand-counted: 12 events a day over 2 days, in 2 tenants; the build's k and slices.
    assert (info.events, info.days, info.tenants, info.rows) == (24, 2, 2, saved.num_rows)
    assert (info.first_day, info.last_day, info.since, info.until) == (D[0], D[1], D[0], D[1])
    assert (info.source, info.k, info.slices, info.pooled) == (
        "profiles",
        10,
        DEFAULT_SLICES,
        False,
    )


def test_loading_a_reference_merges_its_days_like_load_profiles(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    with assay.Workspace.open(root) as ws:
        save_reference(ws, "r", since=D[0], until=D[2])
        for tenant, field in ((None, ""), ("acme", "model_version")):
            got = load_reference(ws, "r", tenant=tenant, slice_field=field)
            want = load_profiles(ws, since=D[0], until=D[2], tenant=tenant, slice_field=field)
            assert [(p.tenant_id, p.slice_value, p.days) for p in got] == [
                (p.tenant_id, p.slice_value, p.days) for p in want
            ]
            for g, w in zip(got, want, strict=True):
                for name, col in w.columns.items():
                    other = g.columns[name]
                    assert (other.count, other.nulls, other.items) == (
                        col.count,
                        col.nulls,
                        col.items,
                    )
                    assert (other.min, other.max) == (col.min, col.max)
        acme = load_reference(ws, "r", tenant="acme")
    assert [p.tenant_id for p in acme] == ["acme"]
    # 8 acme users a day (users 1, 2, 4, 5, 7, 8, 10, 11) over 3 days.
    assert acme[0].columns["event_id"].count == 24


def test_tenant_restricts_a_reference_to_one_tenant(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    with assay.Workspace.open(root) as ws:
        info = save_reference(ws, "beta-only", since=D[0], until=D[0], tenant="beta")
        rows = read_reference(ws, "beta-only")
    assert set(rows["tenant_id"].to_pylist()) == {"beta"}
    assert (info.tenant, info.tenants, info.events) == ("beta", 1, 4)


def test_pooled_counts_are_the_sums_over_tenants(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    with assay.Workspace.open(root) as ws:
        info = save_reference(ws, "pooled", since=D[0], until=D[2], pooled=True)
        pooled = read_reference(ws, "pooled").to_pylist()
        per_tenant = read_profiles(ws, since=D[0], until=D[2]).to_pylist()
    want: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in per_tenant:
        key = (r["event_date"], r["slice_field"], r["slice_value"], r["column"])
        w = want.setdefault(
            key, {"count": 0, "nulls": 0, "items": Counter(), "n": 0, "min": [], "max": []}
        )
        w["count"] += r["count"]
        w["nulls"] += r["nulls"]
        w["items"].update({i["value"]: i["count"] for i in r["items"] or []})
        p = column_profile(r)
        sk = p.sketch() if p.kind == "numeric" else None
        w["n"] += sk.n if sk is not None else 0
        w["min"] += [] if r["min"] is None else [r["min"]]
        w["max"] += [] if r["max"] is None else [r["max"]]
    assert {r["tenant_id"] for r in pooled} == {POOLED}

    # No stored field is lost by pooling: a field some tenant's row has, the pooled row has.
    def present(rows: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
        keyed = ("event_date", "slice_field", "slice_value", "column")
        return {
            (*(r[k] for k in keyed), name)
            for r in rows
            for name, value in r.items()
            if value is not None and name != "tenant_id"
        }

    assert present(pooled) == present(per_tenant)
    for r in pooled:
        w = want[(r["event_date"], r["slice_field"], r["slice_value"], r["column"])]
        assert (r["count"], r["nulls"]) == (w["count"], w["nulls"])
        assert {i["value"]: i["count"] for i in r["items"] or []} == dict(w["items"])
        assert r["min"] == (min(w["min"]) if w["min"] else None)
        assert r["max"] == (max(w["max"]) if w["max"] else None)
        p = column_profile(r)
        if p.kind == "numeric":
            sk = p.sketch()
            assert (sk.n if sk is not None else 0) == w["n"]
    # 12 events a day over 3 days, both tenants.
    assert (info.events, info.tenants, info.pooled) == (36, 2, True)


# -- from an events file ------------------------------------------------------------------------


_input_row = st.fixed_dictionaries(
    {
        "tenant": st.sampled_from(["t1", "t2"]),
        "user": st.sampled_from([f"u{i}" for i in range(6)]),
        "day": st.sampled_from(D[:2]),
        "model_version": st.sampled_from([None, "m1", "m2"]),
        "locale": st.sampled_from([None, "en", "fr"]),
        "intent": st.sampled_from([None, "a", "b", "c"]),
        "handoff": st.sampled_from([None, True, False]),
        "feedback": st.sampled_from([None, -1, 1]),
        "latency_ms": st.one_of(st.none(), st.floats(0, 1e4, allow_nan=False)),
        "tokens_in": st.one_of(st.none(), st.integers(0, 5000)),
        "text": st.sampled_from([None, "hello"]),
    }
)


def _input_events(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, r in enumerate(rows):
        fields = {
            k: v for k, v in r.items() if k not in ("tenant", "user", "day") and v is not None
        }
        out.append(input_event(f"e{i}", r["day"], r["tenant"], r["user"], **fields))
    return out


def _plain(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows as the plain-Python reference takes them (stored form: a day, has_text)."""
    return [
        {
            **{k: v for k, v in r.items() if k not in ("tenant", "user", "day", "text")},
            "event_id": f"e{i}",
            "session_id": "s",
            "event_type": "turn",
            "tenant_id": r["tenant"],
            "user_id": r["user"],
            "event_date": r["day"],
            "has_text": r["text"] is not None,
        }
        for i, r in enumerate(rows)
    ]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reference-events")
    with assay.Workspace.open(root / "ws", create=True):
        pass
    return root


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(_input_row, min_size=1, max_size=50),
    k=st.integers(1, 3),
    pooled=st.booleans(),
)
def test_an_events_reference_matches_the_plain_python_profile(
    scratch: Path, rows: list[dict[str, Any]], k: int, pooled: bool
) -> None:
    slices = ("model_version", "locale")
    path = write_jsonl(_input_events(rows), scratch / "train.jsonl")
    with assay.Workspace.open(scratch / "ws") as ws:
        info = save_reference_events(
            ws, "train", path, slices=slices, k=k, pooled=pooled, replace=True
        )
        got = {_key(r): r for r in read_reference(ws, "train").to_pylist()}
    exact = reference(_plain(rows), slices, k)
    want: dict[tuple[Any, ...], dict[str, Any]] = {}
    for (day, tenant, sf, sv, column), e in exact.items():
        w = want.setdefault(
            (day, POOLED if pooled else tenant, sf, sv, column),
            {"count": 0, "nulls": 0, "items": Counter(), "values": []},
        )
        w["count"] += e["count"]
        w["nulls"] += e["nulls"]
        w["items"].update(e.get("items", {}))
        w["values"] += e.get("values", [])
    assert set(got) == set(want)
    for key, w in want.items():
        p = column_profile(got[key])
        assert (p.count, p.nulls) == (w["count"], w["nulls"]), key
        assert dict(p.items) == {v: n for v, n in w["items"].items() if n}, key
        if w["values"]:
            # At most 50 values: the sketch still holds every one, so it is exact.
            values = sorted(w["values"])
            assert (p.min, p.max) == (values[0], values[-1]), key
            sk = p.sketch()
            assert sk is not None
            assert sk.n == len(values), key
            for v in set(values):
                share = sum(x <= v for x in values) / len(values)
                assert sk.get_rank(v, inclusive=True) == pytest.approx(share), key
        elif p.kind == "numeric":
            assert p.kll is None, key
    assert info.events == len(rows)
    assert info.tenants == len({r["tenant"] for r in rows})
    assert (info.source, info.k, info.slices, info.rejected) == ("events", k, slices, 0)
    assert info.file == str(path)


def test_an_events_reference_drops_rejected_repeated_and_future_rows(tmp_path: Path) -> None:
    with assay.Workspace.open(tmp_path / "ws", create=True) as ws:
        good = [
            input_event(f"g{u}", D[0], "acme", f"user{u}", intent="book", latency_ms=10.0)
            for u in range(3)
        ]
        repeat = input_event("g0", D[0], "acme", "user9", intent="cancel", latency_ms=999.0)
        bad_type = input_event("b1", D[0], "acme", "user1", event_type="bogus")
        future = input_event("f1", D[0], "acme", "user1")
        future["event_time"] = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
        path = tmp_path / "train.jsonl"
        lines = [json.dumps(r) for r in (*good, repeat, bad_type, future)]
        path.write_text("\n".join([*lines[:2], "not json", *lines[2:]]) + "\n", encoding="utf-8")
        info = save_reference_events(ws, "train", path, k=1)
        rows = {_key(r): r for r in read_reference(ws, "train").to_pylist()}
    assert info.events == 3
    assert info.rejected == 4
    assert info.rejected_rules == {
        "-:json": 1,
        "event_id:duplicate": 1,
        "event_time:future": 1,
        "event_type:choice": 1,
    }
    # The first of a repeated (tenant_id, event_id) wins, as at ingest.
    intent = column_profile(rows[(D[0], "acme", "", "", "intent")])
    assert dict(intent.items) == {"book": 3}
    latency = column_profile(rows[(D[0], "acme", "", "", "latency_ms")])
    assert latency.max == 10.0


def test_an_arrow_table_of_events_gives_the_same_reference_as_its_file(tmp_path: Path) -> None:
    rows = _events("t", D[:2])
    path = write_jsonl(rows, tmp_path / "train.jsonl")
    with assay.Workspace.open(tmp_path / "ws", create=True) as ws:
        from_file = save_reference_events(ws, "file", path, pooled=True)
        from_table = save_reference_events(ws, "table", pa.Table.from_pylist(rows), pooled=True)
        assert read_reference(ws, "file").equals(read_reference(ws, "table"))
    assert (from_file.events, from_table.events) == (24, 24)
    assert from_table.file == "<table>"
    assert from_table.file_sha256 is None
    assert from_file.file_sha256 is not None
    assert len(from_file.file_sha256) == 64


def test_an_events_reference_stores_no_raw_text_ids_or_rare_values(tmp_path: Path) -> None:
    k = 3
    rows = [
        input_event(
            f"e{u}",
            D[0],
            "acme",
            f"canary-user-{u}",
            intent="write to alice@example.com",
            text="canary text body",
            session_id=f"canary-session-{u}",
        )
        for u in range(k)
    ]
    rows += [
        input_event(f"r{u}", D[0], "acme", f"other{u}", intent="canary-rare-intent")
        for u in range(k - 1)
    ]
    with assay.Workspace.open(tmp_path / "ws", create=True) as ws:
        save_reference_events(ws, "train", write_jsonl(rows, tmp_path / "t.jsonl"), k=k)
        intent = load_reference(ws, "train")[0].columns["intent"]
        stored = (references_path(ws) / "train.parquet").read_bytes()
    assert dict(intent.items) == {"write to <EMAIL>": k, OTHER: k - 1}
    for canary in (b"canary", b"alice@example.com", b"example.com"):
        assert canary not in stored


# -- names, listing, deleting, errors ---------------------------------------------------------


@pytest.mark.parametrize("name", ["", "Upper", "has space", "-leading", "a/b", "x" * 65, "ref:x"])
def test_bad_names_are_usage_errors_that_say_the_pattern(name: str) -> None:
    with pytest.raises(UsageError, match="lower-case letters, digits") as err:
        check_reference_name(name)
    assert "e.g. intent-model-v3" in str(err.value)


def test_good_names_pass() -> None:
    for name in ("a", "intent-v3", "model_2026.01", "0", "x" * 64):
        assert check_reference_name(name) == name


def test_saving_an_existing_name_needs_replace(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    with assay.Workspace.open(root) as ws:
        first = save_reference(ws, "r", since=D[0], until=D[0])
        with pytest.raises(UsageError, match=r"exists .*--replace"):
            save_reference(ws, "r", since=D[0], until=D[1])
        assert reference_info(ws, "r") == first
        second = save_reference(ws, "r", since=D[0], until=D[1], replace=True)
        assert reference_info(ws, "r") == second
    assert (first.days, second.days) == (1, 2)


def test_list_and_delete(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    with assay.Workspace.open(root) as ws:
        assert list_references(ws) == []
        b = save_reference(ws, "b", since=D[0], until=D[0])
        a = save_reference(ws, "a", since=D[1], until=D[2], pooled=True)
        assert list_references(ws) == [a, b]
        assert delete_reference(ws, "b") == b
        assert list_references(ws) == [a]
        with pytest.raises(NotFoundError, match="no stored reference named 'b'"):
            delete_reference(ws, "b")
        with pytest.raises(NotFoundError, match="reference list"):
            load_reference(ws, "b")
        with pytest.raises(NotFoundError):
            read_reference(ws, "b")


def test_bad_sources_are_clear_errors(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    with assay.Workspace.open(root) as ws:
        with pytest.raises(UsageError, match=r"no stored profiles for 2025-01-01\.\.2025-01-02"):
            save_reference(ws, "r", since=dt.date(2025, 1, 1), until=dt.date(2025, 1, 2))
        with pytest.raises(UsageError, match="no stored profiles of tenant 'nobody'"):
            save_reference(ws, "r", since=D[0], until=D[1], tenant="nobody")
        with pytest.raises(UsageError, match="swap them"):
            save_reference(ws, "r", since=D[1], until=D[0])
        with pytest.raises(NotFoundError, match="no events file"):
            save_reference_events(ws, "r", tmp_path / "missing.jsonl")
        junk = tmp_path / "junk.jsonl"
        junk.write_text('{"event_id": "x"}\nnot json\n', encoding="utf-8")
        with pytest.raises(UsageError, match=r"no valid events .*2 rejected"):
            save_reference_events(ws, "r", junk)
        with pytest.raises(UsageError, match="cannot slice profiles"):
            save_reference_events(ws, "r", junk, slices=("user_id",))
        with pytest.raises(UsageError, match="lower-case"):
            save_reference(ws, "Bad", since=D[0], until=D[1])
        assert list_references(ws) == []
        save_reference_events(
            ws,
            "by-locale",
            write_jsonl(_events("x", D[:1]), tmp_path / "x.jsonl"),
            slices=("locale",),
        )
        with pytest.raises(
            UsageError, match="not sliced by 'model_version'; its slices are locale"
        ):
            load_reference(ws, "by-locale", slice_field="model_version")


def test_reference_files_hold_profile_schema_rows(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    with assay.Workspace.open(root) as ws:
        save_reference(ws, "r", since=D[0], until=D[1], pooled=True)
        rows = read_reference(ws, "r")
        days = defaultdict(int)
        for d in rows["event_date"].to_pylist():
            days[d] += 1
    assert rows.schema == PROFILE_SCHEMA
    assert set(days) == {D[0], D[1]}


def test_forget_names_the_frozen_references_that_may_hold_the_tenant(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from assay.cli import app
    from assay.profiles import references_holding

    root = _workspace(tmp_path)
    with assay.Workspace.open(root) as ws:
        save_reference(ws, "acme-only", since=D[0], until=D[1], tenant="acme")
        save_reference(ws, "beta-only", since=D[0], until=D[1], tenant="beta")
        save_reference(ws, "everyone", since=D[0], until=D[1], pooled=True)
        # beta's own reference and the pooled one; never acme's
        assert sorted(i.name for i in references_holding(ws, "beta")) == [
            "beta-only",
            "everyone",
        ]
        assert references_holding(ws, "nobody") == [i for i in list_references(ws) if i.pooled]
    out = CliRunner().invoke(app, ["forget", "-w", str(root), "--tenant", "beta"])
    assert out.exit_code == 0, out.output
    assert "beta-only, everyone (pooled)" in out.stderr
    assert "acme-only" not in out.stderr
    with assay.Workspace.open(root) as ws:  # frozen: forget did not touch them
        assert {i.name for i in list_references(ws)} == {"acme-only", "beta-only", "everyone"}
