"""write(): deterministic files, JSON Lines equal to generate()'s tables, gzip and Parquet."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import assay.synth
from assay import UsageError
from assay.synth import SynthConfig, SynthOutput, generate, truth, write

TINY = SynthConfig(tenants=3, users=40, days=6, seed=11, start=dt.date(2026, 1, 1))


def _digest(output: SynthOutput) -> dict[str, str]:
    paths = [*output.files, output.truth_path]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_public_names_are_importable() -> None:
    for name in assay.synth.__all__:
        assert getattr(assay.synth, name) is not None
    assert set(assay.synth.__all__) >= {"SynthConfig", "SynthOutput", "generate", "truth", "write"}


def test_same_config_writes_identical_bytes(tmp_path: Path) -> None:
    first = write(tmp_path / "a", TINY)
    second = write(tmp_path / "b", TINY)
    assert first.events == second.events > 0
    assert _digest(first) == _digest(second)


def test_different_seed_writes_different_events(tmp_path: Path) -> None:
    first = write(tmp_path / "a", TINY)
    other = write(tmp_path / "b", SynthConfig(tenants=3, users=40, days=6, seed=12))
    assert first.files[0].read_bytes() != other.files[0].read_bytes()


def test_files_are_one_per_day_with_one_json_object_per_line(tmp_path: Path) -> None:
    out = write(tmp_path, TINY)
    assert [p.name for p in out.files] == [f"events-{d:04d}.jsonl" for d in range(1, 7)]
    count = 0
    for path in out.files:
        data = path.read_bytes()
        assert data.endswith(b"\n")
        for line in data.split(b"\n")[:-1]:
            assert isinstance(json.loads(line), dict)
            count += 1
    assert count == out.events


def test_jsonl_holds_the_same_events_as_generate(
    tmp_path: Path, instant: Callable[[object], dt.datetime]
) -> None:
    from assay.schema import FIELD_NAMES

    out = write(tmp_path, TINY)
    lines = [json.loads(x) for p in out.files for x in p.read_text("utf-8").splitlines()]
    rows = [r for t in generate(TINY) for r in t.to_pylist()]
    assert len(lines) == len(rows) == out.events
    for line, row in zip(lines, rows, strict=True):
        assert list(line) == [name for name in FIELD_NAMES if name in line], "schema order"
        expected: dict[str, Any] = {k: v for k, v in row.items() if v is not None}
        if "attributes" in expected:
            expected["attributes"] = dict(expected["attributes"])
        assert isinstance(expected["event_time"], str)
        if isinstance(line["event_time"], int):
            # Arrow holds one type per column: the epoch-ms rows appear as UTC strings there.
            assert expected["event_time"].endswith("Z")
            assert instant(line["event_time"]) == instant(expected["event_time"])
            line["event_time"] = expected["event_time"]
        assert line == expected


def test_generate_yields_the_input_schema_in_field_order() -> None:
    from assay.schema import FIELD_NAMES

    table = next(generate(TINY))
    assert tuple(table.column_names) == FIELD_NAMES
    assert str(table.schema.field("event_time").type) == "string"
    assert str(table.schema.field("attributes").type) == "map<string, string>"


def test_gzip_output_decompresses_to_the_plain_bytes(tmp_path: Path) -> None:
    plain = write(tmp_path / "plain", TINY)
    zipped = write(tmp_path / "zipped", TINY, gzip=True)
    assert [p.name for p in zipped.files] == [p.name + ".gz" for p in plain.files]
    for p, z in zip(plain.files, zipped.files, strict=True):
        assert gzip.decompress(z.read_bytes()) == p.read_bytes()
    again = write(tmp_path / "again", TINY, gzip=True)
    assert _digest(zipped) == _digest(again)


def test_parquet_output_reads_back_as_the_generated_tables(tmp_path: Path) -> None:
    out = write(tmp_path, TINY, format="parquet")
    assert all(p.suffix == ".parquet" for p in out.files)
    read = [pq.read_table(p) for p in out.files]
    assert [t.to_pylist() for t in read] == [t.to_pylist() for t in generate(TINY)]


def test_progress_is_called_with_the_events_of_each_file(tmp_path: Path) -> None:
    seen: list[int] = []
    out = write(tmp_path, TINY, progress=seen.append)
    assert len(seen) == len(out.files)
    assert sum(seen) == out.events
    assert seen == [len(p.read_bytes().splitlines()) for p in out.files]


def test_truth_json_equals_truth_and_is_plain_json(tmp_path: Path) -> None:
    out = write(tmp_path, TINY)
    stored = json.loads(out.truth_path.read_text("utf-8"))
    assert stored == truth(TINY, sessions=True) == out.truth
    assert stored["seed"] == 11
    assert stored["start"] == "2026-01-01"
    assert stored["end"] == "2026-01-06"
    assert stored["days"] == 6
    assert [t["tenant_id"] for t in stored["tenants"]] == ["tenant-000", "tenant-001", "tenant-002"]
    assert sum(t["users"] for t in stored["tenants"]) == 3 * 40
    assert stored["incidents"] == [], "6 days leave no room for a baseline"
    assert len(stored["growth"]["expected_dau"]) == 6


def test_truth_estimates_the_event_count() -> None:
    config = SynthConfig(tenants=4, users=60, days=14, seed=5)
    produced = sum(t.num_rows for t in generate(config))
    assert truth(config)["expected_events"] == pytest.approx(produced, rel=0.1)


def test_tenants_differ_in_size() -> None:
    sizes = sorted(t["users"] for t in truth(SynthConfig())["tenants"])
    assert sizes[-1] >= 10 * sizes[0]
    assert sum(sizes) == 20 * 200
    assert sum(s < 200 for s in sizes) > len(sizes) / 2, "many small tenants, a few large"


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"tenants": 0}, "tenants"),
        ({"users": -1}, "users"),
        ({"days": 0}, "days"),
        ({"seed": -3}, "seed"),
        ({"pii_rate": 1.5}, "pii_rate"),
        ({"start": "2026-01-01"}, "start"),
    ],
)
def test_bad_config_raises_usage_error_naming_the_field(kwargs: dict[str, Any], word: str) -> None:
    with pytest.raises(UsageError, match=word):
        SynthConfig(**kwargs)


def test_parquet_with_gzip_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="gzip"):
        write(tmp_path, TINY, format="parquet", gzip=True)
