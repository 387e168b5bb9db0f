"""Utterances come from the bundled CLINC150; about pii_rate of them carry planted personal data."""

from __future__ import annotations

import gzip
import json
import re
from importlib import resources
from typing import Any

import pytest

from assay.synth import SynthConfig, generate, load_clinc150

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b")
CARD = re.compile(r"\b(?:\d{4}[ -]?){3}\d{4}\b")
PHONE = re.compile(r"(?:\+\d{1,3}|\(\d{3}\))[\d ()-]{7,}\d")


def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(value: str) -> bool:
    compact = value.replace(" ", "")
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def kinds_in(text: str) -> set[str]:
    found = set()
    for name, pattern in (("email", EMAIL), ("ipv4", IPV4), ("iban", IBAN), ("card", CARD)):
        if pattern.search(text):
            found.add(name)
    if PHONE.search(text):
        found.add("phone")
    return found


def test_clinc150_loads_from_package_data() -> None:
    data = resources.files("assay.synth").joinpath("data")
    assert data.joinpath("LICENSE").read_text("utf-8").startswith("Creative Commons")
    assert "CC BY 3.0" in data.joinpath("README.md").read_text("utf-8")
    raw = json.loads(gzip.decompress(data.joinpath("data_full.json.gz").read_bytes()))
    table = load_clinc150()
    assert table.num_rows == sum(len(v) for v in raw.values()) == 15000 + 3000 + 4500 + 1200
    assert len(set(table.column("intent").to_pylist())) == 151
    assert table.slice(0, 1).to_pylist()[0] == {
        "text": "what expression would i use to say i love you if i were an italian",
        "intent": "translate",
        "domain": "travel",
        "split": "train",
    }
    assert set(table.column("domain").to_pylist()) >= {"banking", "travel", "oos"}


def test_turn_texts_and_intents_are_clinc150_pairs(small_rows: list[dict[str, Any]]) -> None:
    pairs = set(
        zip(
            load_clinc150().column("text").to_pylist(),
            load_clinc150().column("intent").to_pylist(),
            strict=True,
        )
    )
    turns = [r for r in small_rows if r["event_type"] == "turn"]
    from_clinc = [(r["text"], r["intent"]) in pairs for r in turns]
    assert sum(from_clinc) / len(turns) > 0.95
    for r in turns:
        if (r["text"], r["intent"]) not in pairs:
            assert kinds_in(r["text"]), "only texts with planted personal data differ"


def test_about_pii_rate_of_texts_hold_personal_data(small_rows: list[dict[str, Any]]) -> None:
    texts = [r["text"] for r in small_rows if r["event_type"] == "turn"]
    with_pii = [t for t in texts if kinds_in(t)]
    assert 0.02 <= len(with_pii) / len(texts) <= 0.04
    kinds = [k for t in with_pii for k in kinds_in(t)]
    assert {"email", "phone", "card", "iban", "ipv4"} <= set(kinds)


def test_planted_cards_pass_luhn_and_ibans_pass_mod_97(small_rows: list[dict[str, Any]]) -> None:
    texts = [r["text"] for r in small_rows if r["event_type"] == "turn"]
    # IBAN digits come in groups of four too: look for cards where no IBAN is.
    cards = [m.group(0) for t in texts for m in CARD.finditer(IBAN.sub("", t))]
    ibans = [m.group(0) for t in texts for m in IBAN.finditer(t)]
    assert len(cards) >= 10
    assert len(ibans) >= 10
    assert all(luhn_ok(c) for c in cards)
    assert all(iban_ok(i) for i in ibans)


def test_no_pii_rate_plants_nothing() -> None:
    config = SynthConfig(tenants=2, users=60, days=7, seed=1, pii_rate=0.0)
    texts = [t for b in generate(config) for t in b.column("text").to_pylist() if t is not None]
    pairs = set(load_clinc150().column("text").to_pylist())
    assert texts
    assert all(t in pairs for t in texts)


def test_some_attributes_hold_a_contact_detail() -> None:
    config = SynthConfig(tenants=4, users=300, days=14, seed=2)
    contacts = [
        dict(a)["contact"]
        for b in generate(config)
        for a in b.column("attributes").to_pylist()
        if a is not None and "contact" in dict(a)
    ]
    assert contacts
    assert all(EMAIL.search(c) or PHONE.search(c) for c in contacts)


@pytest.mark.parametrize("value", ["4111 1111 1111 1111", "5500-0000-0000-0004"])
def test_luhn_reference_accepts_known_test_cards(value: str) -> None:
    assert luhn_ok(value)
    assert not luhn_ok(value[:-1] + str((int(value[-1]) + 1) % 10))


def test_iban_reference_accepts_a_published_example() -> None:
    assert iban_ok("GB82 WEST 1234 5698 7654 32")
    assert not iban_ok("GB82 WEST 1234 5698 7654 33")
