"""Depth bombs: JSON nested past MAX_DEPTH is refused on its own line before any parser runs.

pyarrow.json overflows the C stack (SIGSEGV) on a line nesting ~20,000 arrays, so the readers
are run in a child process here: a regression fails the test instead of killing pytest.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.ingest._nesting import MAX_DEPTH, deep_lines, max_depth, value_end
from assay.ingest.jsonl import read_json_body, read_jsonl


def reference_depth(value: Any) -> int:
    """Nesting of a parsed JSON value, recursively: a scalar is 0, ``[]`` and ``{}`` are 1."""
    if isinstance(value, dict):
        return 1 + max((reference_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((reference_depth(v) for v in value), default=0)
    return 0


# Strings full of the characters the scan must see through: brackets, quotes, backslashes.
_tricky = st.text(alphabet=st.sampled_from('[]{}"\\,:aé€𝄞 \n\t'), max_size=8)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | _tricky,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_tricky, inner, max_size=4),
    max_leaves=30,
)


@given(_json, st.booleans())
@settings(max_examples=300, deadline=None)
def test_scan_depth_equals_the_parsed_values_depth(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    as_bytes = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    as_codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    assert max_depth(as_bytes) == reference_depth(value)
    assert max_depth(as_codes) == reference_depth(value)


@given(st.lists(_json | st.lists(_json), min_size=1, max_size=3), _tricky)
@settings(max_examples=200, deadline=None)
def test_value_end_finds_the_end_of_an_array_followed_by_anything(
    value: list[Any], tail: str
) -> None:
    text = json.dumps(value, ensure_ascii=False)
    codes = np.frombuffer((text + tail).encode("utf-32-le"), dtype=np.uint32)
    assert value_end(codes) == len(text)
    assert value_end(codes[: len(text) - 1]) is None


@given(st.lists(st.tuples(st.integers(0, 2 * MAX_DEPTH), st.booleans()), max_size=12))
@settings(max_examples=100, deadline=None)
def test_deep_lines_names_exactly_the_lines_deeper_than_the_limit(
    shapes: list[tuple[int, bool]],
) -> None:
    lines = []
    for depth, in_string in shapes:
        nested = "[" * depth + "]" * depth
        # In a string the brackets do not nest: only the object itself counts.
        lines.append(json.dumps({"s": nested}) if in_string else '{"a": ' + nested + "}")
    data = ("\n".join(lines) + "\n").encode()
    codes = np.frombuffer(data, dtype=np.uint8)
    expected = [i for i, (d, s) in enumerate(shapes) if not s and d + 1 > MAX_DEPTH]
    assert deep_lines(codes, np.flatnonzero(codes == ord("\n"))).tolist() == expected


@given(st.lists(_json, min_size=1, max_size=8), st.integers(0, 3))
@settings(max_examples=200, deadline=None)
def test_each_line_is_measured_on_its_own(values: list[Any], limit: int) -> None:
    # ensure_ascii keeps each value on one line; strings hold brackets, quotes, backslashes.
    data = ("\n".join(json.dumps(v) for v in values) + "\n").encode()
    codes = np.frombuffer(data, dtype=np.uint8)
    expected = [i for i, v in enumerate(values) if reference_depth(v) > limit]
    assert deep_lines(codes, np.flatnonzero(codes == ord("\n")), limit).tolist() == expected


def test_escaped_quotes_and_stray_brackets_do_not_hide_nesting() -> None:
    # An escaped quote does not end the string; an even run of backslashes does.
    inside = np.frombuffer(b'{"a": "x\\"[[[[", "b": [[1]]}', dtype=np.uint8)
    assert max_depth(inside) == 3
    closed = np.frombuffer(b'{"a": "x\\\\", "b": [[1]]}', dtype=np.uint8)
    assert max_depth(closed) == 3
    # Closing brackets first cannot pay for the opening ones that follow.
    stray = np.frombuffer(b"]]]]]" + b"[" * 10, dtype=np.uint8)
    assert max_depth(stray) == 10


def _good(i: int) -> dict[str, Any]:
    return {"event_id": f"e{i}", "tenant_id": "acme", "user_id": f"u{i}"}


def _bomb(depth: int, *, objects: bool = False) -> str:
    inner = '{"a": ' * depth + "1" + "}" * depth if objects else "[" * depth + "]" * depth
    return '{"event_id": "bomb", "tenant_id": "acme", "attributes": ' + inner + "}"


_CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from assay.ingest.jsonl import read_json_body, read_jsonl

    path, mode = Path(sys.argv[1]), sys.argv[2]
    if mode == "file":
        batches = read_jsonl(path, batch_rows=1000)
    else:
        batches = read_json_body(path.read_bytes(), array=mode == "array")
    rows, failures = [], []
    for batch in batches:
        ids = batch.table.column("event_id").to_pylist() if batch.table.num_rows else []
        rows += list(zip(batch.lines.to_pylist(), ids))
        failures += [(f.line, f.rule) for f in batch.failures]
    print(json.dumps({"rows": rows, "failures": failures}))
    """
)


def _read_in_child(path: Path, mode: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), mode],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"reader died with {done.returncode}: {done.stderr[-2000:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("depth", [10**5, 10**6])
@pytest.mark.parametrize("objects", [False, True], ids=["arrays", "objects"])
@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("bomb.jsonl", "file"),
        ("bomb.json", "file"),  # a JSON array file
        ("body.ndjson", "lines"),
        ("body.json", "array"),
    ],
)
def test_a_depth_bomb_is_refused_on_its_line_and_its_neighbours_are_read(
    tmp_path: Path, depth: int, objects: bool, name: str, mode: str
) -> None:
    records = [json.dumps(_good(1)), _bomb(depth, objects=objects), json.dumps(_good(3))]
    is_array = name == "bomb.json" or mode == "array"
    text = "[" + ",\n".join(records) + "]" if is_array else "\n".join(records) + "\n"
    path = tmp_path / name
    path.write_text(text)
    got = _read_in_child(path, mode)
    assert got == {"rows": [[1, "e1"], [3, "e3"]], "failures": [[2, "depth"]]}


@pytest.mark.parametrize("depth", [MAX_DEPTH, MAX_DEPTH + 1, 1000, 5000])
def test_the_limit_is_the_same_whichever_parser_would_have_read_the_line(
    tmp_path: Path, depth: int
) -> None:
    # The record itself is one level: its attributes nest depth - 1 more.
    line = _bomb(depth - 1)
    ndjson = (json.dumps(_good(1)) + "\n" + line + "\n").encode()
    array = ("[" + json.dumps(_good(1)) + ", " + line + "]").encode()
    path = tmp_path / "lines.jsonl"
    path.write_bytes(ndjson)
    expected_failures = [(2, "depth")] if depth > MAX_DEPTH else []
    for batches in (
        read_jsonl(path),
        read_json_body(ndjson, array=False),
        read_json_body(array, array=True),
    ):
        failures = [(f.line, f.rule) for b in batches for f in b.failures]
        assert failures == expected_failures


def test_a_depth_failure_says_the_limit_the_field_and_how_to_fix_it() -> None:
    [batch] = read_json_body((_bomb(200) + "\n").encode(), array=False)
    [failure] = batch.failures
    assert failure.message == (
        "line 1 nests arrays and objects deeper than 64 levels in attributes (an event nests "
        "at most 3); flatten the value, or send it as a string"
    )
    assert failure.field == "attributes"


@pytest.mark.parametrize("array", [False, True])
@pytest.mark.parametrize(
    ("key", "field"),
    [
        ("flights", "flights"),
        ("attributes", "attributes"),
        ("carol@example.com", None),  # not a field: never repeated back
        ('flights\\"', None),
    ],
)
def test_a_depth_failure_names_only_a_schema_field(
    key: str, field: str | None, array: bool
) -> None:
    deep = "[" * 3000 + "]" * 3000
    record = '{"event_id": "e1", ' + json.dumps(key) + ": " + deep + "}"
    body = ("[" + record + "]" if array else record + "\n").encode()
    [failure] = [f for b in read_json_body(body, array=array) for f in b.failures]
    assert (failure.rule, failure.field) == ("depth", field)
    assert "carol" not in failure.message
