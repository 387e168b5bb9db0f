"""Reading intent data: the three layouts, the seeded stratified split, redaction on read,
and errors that say what was expected without quoting an utterance."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay import NotFoundError, UsageError
from assay.models._intent_data import MIN_PER_LABEL, clinc150_path, load_intent_data, subset

SECRET_TEXT = "private words nobody should see"


def _jsonl(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows))
    return path


def _rows(labels: dict[str, int]) -> list[tuple[str, str]]:
    return [(f"utterance {label} {i}", label) for label, n in labels.items() for i in range(n)]


def test_clinc_layout_keeps_its_splits_and_relabels_oos(tmp_path: Path) -> None:
    data = {
        "train": [["hi there", "greet"], ["bye now", "leave"]],
        "val": [["hello", "greet"]],
        "test": [["see you", "leave"]],
        "oos_train": [["what is a cat", "oos"]],
        "oos_val": [["sing me a song", "oos"]],
        "oos_test": [],
    }
    path = tmp_path / "clinc.json"
    path.write_text(json.dumps(data))
    ds = load_intent_data(path, oos_label="out")
    assert ds.layout == "clinc"
    assert ds.train.texts == ["hi there", "bye now", "what is a cat"]
    assert ds.train.labels == ["greet", "leave", "out"]
    assert ds.valid.labels == ["greet", "out"]
    assert ds.test.labels == ["leave"]


def test_utterances_are_redacted_when_read(tmp_path: Path) -> None:
    rows = _rows({"a": 6, "b": 6})
    rows[0] = ("mail bob@example.com or call (415) 555-0132", "a")
    ds = load_intent_data(_jsonl(tmp_path / "d.jsonl", rows))
    texts = ds.train.texts + ds.valid.texts + ds.test.texts
    assert "mail <EMAIL> or call <PHONE>" in texts
    assert not any("bob@" in t for t in texts)
    assert ds.redacted == 2


def test_jsonl_and_csv_split_stratified_and_seeded(tmp_path: Path) -> None:
    rows = _rows({"a": 20, "b": 10, "c": 7})
    jsonl = load_intent_data(_jsonl(tmp_path / "d.jsonl", rows), seed=3)
    csv_path = tmp_path / "d.csv"
    csv_path.write_text("label,text\n" + "".join(f'{lab},"{t}"\n' for t, lab in rows))
    csv = load_intent_data(csv_path, seed=3)
    assert (jsonl.layout, csv.layout) == ("jsonl", "csv")
    assert csv.train == jsonl.train
    assert csv.test == jsonl.test
    # 15% of 20 = 3, of 10 = 1.5 -> 2, of 7 = 1.05 -> 1 in each of validation and test.
    assert Counter(jsonl.valid.labels) == {"a": 3, "b": 2, "c": 1}
    assert Counter(jsonl.test.labels) == {"a": 3, "b": 2, "c": 1}
    assert Counter(jsonl.train.labels) == {"a": 14, "b": 6, "c": 5}
    other = load_intent_data(_jsonl(tmp_path / "d.jsonl", rows), seed=4)
    assert other.valid.texts != jsonl.valid.texts


@settings(max_examples=30, deadline=None)
@given(st.dictionaries(st.sampled_from("abcdef"), st.integers(MIN_PER_LABEL, 30), min_size=2))
def test_the_split_is_a_partition_holding_every_label_in_every_part(
    tmp_path_factory: pytest.TempPathFactory, labels: dict[str, int]
) -> None:
    rows = _rows(labels)
    path = _jsonl(tmp_path_factory.mktemp("split") / "d.jsonl", rows)
    ds = load_intent_data(path)
    parts = [ds.train, ds.valid, ds.test]
    got = sorted((t, lab) for p in parts for t, lab in zip(p.texts, p.labels, strict=True))
    assert got == sorted(rows)
    for part in parts:
        assert set(part.labels) == set(labels)


def _error(tmp_path: Path, name: str, content: str) -> str:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(UsageError) as info:
        load_intent_data(path)
    message = str(info.value)
    assert SECRET_TEXT not in message
    return message


def test_a_bad_jsonl_line_is_named_never_quoted(tmp_path: Path) -> None:
    good = "".join(json.dumps({"text": f"t {i}", "label": "a"}) + "\n" for i in range(3))
    message = _error(tmp_path, "d.jsonl", good + '{"text": "' + SECRET_TEXT + '", "label": 3}\n')
    assert "line 4: field 'label' must be a string (got int)" in message
    message = _error(tmp_path, "d.jsonl", good + '{"text": "' + SECRET_TEXT + '" oops}\n')
    assert "line 4 is not JSON" in message
    message = _error(tmp_path, "d.jsonl", good + '["' + SECRET_TEXT + '"]\n')
    assert "line 4 is a JSON list" in message


def test_csv_without_the_columns_says_which_are_missing(tmp_path: Path) -> None:
    message = _error(tmp_path, "d.csv", f"utterance,label\n{SECRET_TEXT},a\n")
    assert "missing: text" in message
    assert "text,label" in message
    message = _error(tmp_path, "d.csv", f"text,label\n{SECRET_TEXT},a,extra\n")
    assert "row 2" in message


def test_clinc_layout_errors(tmp_path: Path) -> None:
    message = _error(tmp_path, "c.json", json.dumps({"train": [], "val": []}))
    assert "missing: test" in message
    bad = {"train": [[SECRET_TEXT, "a", "b"]], "val": [], "test": []}
    message = _error(tmp_path, "c.json", json.dumps(bad))
    assert "train[0] must be a [text, intent] pair" in message
    message = _error(tmp_path, "c.json", json.dumps({"train": {}, "val": [], "test": []}))
    assert "'train' must be a list" in message


def test_too_few_rows_per_label_and_empty_files(tmp_path: Path) -> None:
    rows = _rows({"a": 10, "b": MIN_PER_LABEL - 1})
    path = _jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(UsageError, match=f"at least {MIN_PER_LABEL} rows"):
        load_intent_data(path)
    assert "empty" in _error(tmp_path, "e.jsonl", "\n")
    with pytest.raises(NotFoundError, match="no intent data file"):
        load_intent_data(tmp_path / "missing.jsonl")


def test_subset_is_deterministic_and_sized() -> None:
    full = {
        "train": [[f"t{i}", "a" if i % 2 else "b"] for i in range(40)] + [["x", "c"]],
        "val": [[f"v{i}", "a"] for i in range(10)],
        "test": [[f"s{i}", "b"] for i in range(10)],
        "oos_train": [[f"o{i}", "oos"] for i in range(9)],
        "oos_val": [],
        "oos_test": [["q", "oos"]],
    }
    small = subset(full, intents=["a", "b"], per_intent=10, oos_per_split={"oos_train": 3})
    assert small["train"] == [[f"t{i}", "a" if i % 2 else "b"] for i in range(20)]
    assert small["val"] == [[f"v{i}", "a"] for i in range(2)]
    assert small["test"] == [[f"s{i}", "b"] for i in range(2)]
    assert small["oos_train"] == [["o0", "oos"], ["o1", "oos"], ["o2", "oos"]]
    assert small["oos_val"] == []
    assert small["oos_test"] == []


def test_the_shipped_clinc150_files_have_the_documented_sizes() -> None:
    full = json.loads(clinc150_path().read_text(encoding="utf-8"))
    sizes = {k: len(v) for k, v in full.items()}
    assert sizes == {
        "train": 15_000,
        "val": 3_000,
        "test": 4_500,
        "oos_train": 100,
        "oos_val": 100,
        "oos_test": 1_000,
    }
    small = json.loads(clinc150_path(small=True).read_text(encoding="utf-8"))
    domains = json.loads((clinc150_path().parent / "domains.json").read_text(encoding="utf-8"))
    intents = [names[0] for names in domains.values()]
    assert small == subset(
        full,
        intents=intents,
        per_intent=20,
        oos_per_split={"oos_train": 20, "oos_val": 10, "oos_test": 20},
    )
    assert (clinc150_path().parent / "LICENSE").read_text().count("Attribution 3.0") >= 1


def test_the_shipped_copies_are_named_where_no_such_file_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    small = load_intent_data("clinc150-small")
    # The 10-intent subset (scripts/clinc150_subset.py) plus its oos rows.
    assert len(set(small.train.labels)) == 11
    assert "weather" in small.train.labels
    full = load_intent_data("clinc150")
    assert len(set(full.train.labels)) == 151
    assert len(full.test.labels) == 5500  # CLINC150's test (4,500) and oos_test (1,000)
    # A file of that name wins over the shipped copy.
    _jsonl(tmp_path / "clinc150-small", _rows({"a": 10, "b": 10}))
    assert set(load_intent_data("clinc150-small").train.labels) == {"a", "b"}
