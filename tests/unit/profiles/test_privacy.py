"""k-anonymity canaries: values seen by k - 1 users, and every text and id, never reach a
stored profile byte; a value seen by k users does."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
from profiles_data import ingest, input_event, write_jsonl

import assay
from assay.profiles import DEFAULT_MIN_USERS, build_profiles, profiles_path, read_profiles

K = DEFAULT_MIN_USERS
DAY = dt.date(2026, 2, 10)

CANARIES = {
    "intent": "CANARY-INTENT-q7",
    "error_code": "CANARY-ERROR-z3",
    "model_version": "CANARY-MODEL-x9",
    "app_version": "CANARY-APPVER-k2",
    "text": "CANARY-TEXT-w5 the user typed this",
    "session_id": "CANARY-SESSION-m1",
    "flights": "CANARY-FLIGHT-r8",
    "retrieved_doc_ids": "CANARY-DOC-j4",
    "attributes_key": "CANARY-ATTRKEY-p6",
    "attributes_value": "CANARY-ATTRVAL-h2",
}
VISIBLE = "VISIBLE-INTENT-with-k-users"


def _user(i: int) -> str:
    return f"CANARY-USER-{i:03d}"


def _events() -> list[dict[str, object]]:
    rows = []
    # k - 1 distinct users (several events each) carry the categorical canaries.
    for i in range(K - 1):
        for j in range(3):
            rows.append(
                input_event(
                    f"c{i}-{j}",
                    DAY,
                    "acme",
                    _user(i),
                    session_id=f"{CANARIES['session_id']}-{i}",
                    intent=CANARIES["intent"],
                    error_code=CANARIES["error_code"],
                    model_version=CANARIES["model_version"],
                    app_version=CANARIES["app_version"],
                    text=CANARIES["text"],
                    flights=[CANARIES["flights"]],
                    retrieved_doc_ids=[CANARIES["retrieved_doc_ids"]],
                    attributes={CANARIES["attributes_key"]: CANARIES["attributes_value"]},
                    latency_ms=100.0 + i,
                )
            )
    # k distinct users carry the visible value (the canary users are among them).
    for i in range(K):
        rows.append(input_event(f"v{i}", DAY, "acme", _user(i + 5), intent=VISIBLE))
    return rows


def test_no_canary_or_raw_id_reaches_any_stored_profile_byte(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    ingest(root, [write_jsonl(_events(), tmp_path / "events.jsonl")])
    with assay.Workspace.open(root) as ws:
        summary = build_profiles(ws)
        assert summary.days_rebuilt == 1
        folder = profiles_path(ws)
        pseudonyms = [ws.pseudonym("acme", _user(i)) for i in range(K + 5)]
        rows = read_profiles(ws)

    files = [p for p in folder.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files)
    blob = b"".join(p.read_bytes() for p in files)
    # The decoded values too (Parquet pages may be compressed).
    decoded = "".join(
        str(pq.read_table(p).to_pylist()) for p in files if p.suffix == ".parquet"
    ).encode()
    for haystack in (blob, decoded):
        assert VISIBLE.encode() in haystack  # the check can see a stored value
        for canary in CANARIES.values():
            assert canary.encode() not in haystack, canary
            assert canary.split(" ")[0].encode() not in haystack, canary
        assert b"CANARY" not in haystack
        for p in pseudonyms:
            assert p.encode() not in haystack

    # The canary events are still counted, under <OTHER>.
    intent = [r for r in rows.to_pylist() if r["column"] == "intent" and r["slice_field"] == ""]
    assert len(intent) == 1
    items = {i["value"]: i["count"] for i in intent[0]["items"]}
    assert items == {VISIBLE: K, "<OTHER>": 3 * (K - 1)}


def test_the_same_scan_finds_the_canary_when_k_lets_it_through(tmp_path: Path) -> None:
    # The control of the test above: with k = k - 1 the categorical canaries are stored.
    root = tmp_path / "ws"
    ingest(root, [write_jsonl(_events(), tmp_path / "events.jsonl")])
    with assay.Workspace.open(root) as ws:
        build_profiles(ws, k=K - 1)
        blob = b"".join(p.read_bytes() for p in profiles_path(ws).rglob("*") if p.is_file())
    assert CANARIES["intent"].encode() in blob
    assert CANARIES["model_version"].encode() in blob
    assert CANARIES["text"].split(" ")[0].encode() not in blob
    assert CANARIES["session_id"].encode() not in blob
