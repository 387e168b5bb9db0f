"""Synthetic retrieval with known relevance and the injected RAG release (rag=True)."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from assay.cli import app
from assay.synth import SynthConfig, generate, rag_qrels, truth

END = dt.date(2026, 1, 30)
OFF = SynthConfig(tenants=4, users=150, days=30, seed=5, end=END)
ON = SynthConfig(tenants=4, users=150, days=30, seed=5, end=END, rag=True)
RAG_COLUMNS = ("retrieved_doc_ids", "cited_doc_ids", "attributes", "prompt_template")


@pytest.fixture(scope="module")
def tables() -> tuple[pa.Table, pa.Table]:
    return pa.concat_tables(generate(OFF)), pa.concat_tables(generate(ON))


def test_rag_off_is_the_default_and_on_moves_no_other_field(
    tables: tuple[pa.Table, pa.Table],
) -> None:
    off, on = tables
    assert SynthConfig(tenants=4, users=150, days=30, seed=5, end=END) == OFF
    assert off.num_rows == on.num_rows
    for name in off.column_names:
        if name not in RAG_COLUMNS:
            assert off.column(name).equals(on.column(name)), name
    # Without rag, turns carry no attributes and no rag-v4.
    turns = off.filter(pc.equal(off.column("event_type"), "turn"))
    assert turns.column("attributes").null_count == turns.num_rows
    assert "rag-v4" not in set(off.column("prompt_template").to_pylist())


def test_truth_records_the_rag_release_after_the_other_incidents() -> None:
    off, on = truth(OFF), truth(ON)
    assert on["incidents"][:3] == off["incidents"]
    (rag,) = on["incidents"][3:]
    assert rag["kind"] == "rag_release"
    assert rag["metric"] == "cited_rate"
    assert rag["tenant_id"] is None
    assert rag["slice"] == {"locale": rag["locale"], "prompt_template": "rag-v4"}
    assert rag["locale"] != "en-US"
    assert dt.date(2026, 1, 18) <= dt.date.fromisoformat(rag["start"]) <= dt.date(2026, 1, 21)
    assert on["config"]["rag"] is True
    assert "rag" not in off["config"]


def _slots(on: pa.Table, qrels: pa.Table) -> dict[str, list[tuple[bool, bool]]]:
    """(relevant, cited) per retrieved doc of the 3-doc answers, by group: 'bad' (rag-v4 in
    the release's locale), 'v4-other' (rag-v4 elsewhere), 'before' (every answer)."""
    rel = {
        (q, d)
        for q, d, r in zip(*qrels.to_pydict().values(), strict=True)
        if r > 0  # every stored judgement is relevant: grades 1 and 2
    }
    info = truth(ON)["incidents"][3]
    start = info["start"]
    out: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    turns = on.filter(pc.equal(on.column("event_type"), "turn")).to_pylist()
    for t in turns:
        docs = t["retrieved_doc_ids"]
        if not docs or len(docs) != 3:
            continue
        query = dict(t["attributes"])["query_id"]
        cited = set(t["cited_doc_ids"] or ())
        if t["prompt_template"] == "rag-v4":
            group = "bad" if t["locale"] == info["locale"] else "v4-other"
        elif t["event_time"][:10] < start:
            group = "before"
        else:
            continue
        out[group] += [((query, d) in rel, d in cited) for d in docs]
    return out


def _share(pairs: list[tuple[bool, bool]], which: int, where: Any = None) -> float:
    chosen = [p[which] for p in pairs if where is None or p[0] == where]
    assert len(chosen) >= 60, len(chosen)
    return sum(chosen) / len(chosen)


def test_retrieval_follows_the_known_hit_and_citation_rates(
    tables: tuple[pa.Table, pa.Table],
) -> None:
    _, on = tables
    qrels = rag_qrels(ON)
    assert qrels.num_rows == 4 * 300 * 3
    slots = _slots(on, qrels)
    # With 3 slots the cap of 3 relevant docs never binds: a slot is relevant with the hit rate.
    assert _share(slots["before"], 0) == pytest.approx(0.7, abs=0.05)
    assert _share(slots["v4-other"], 0) == pytest.approx(0.7, abs=0.08)
    assert _share(slots["bad"], 0) == pytest.approx(0.2, abs=0.1)
    # Citations: 0.8 of relevant and 0.15 of other docs; 0.3 and 0.05 in the bad slice.
    assert _share(slots["before"], 1, where=True) == pytest.approx(0.8, abs=0.05)
    assert _share(slots["before"], 1, where=False) == pytest.approx(0.15, abs=0.05)
    assert _share(slots["bad"], 1, where=False) == pytest.approx(0.05, abs=0.05)


def test_every_rag_turn_asks_one_query_of_its_own_tenant(
    tables: tuple[pa.Table, pa.Table],
) -> None:
    _, on = tables
    turns = on.filter(pc.equal(on.column("event_type"), "turn")).to_pylist()
    tenants = truth(ON)["tenants"]
    index = {t["tenant_id"]: i for i, t in enumerate(tenants)}
    seen = 0
    for t in turns:
        if not t["retrieved_doc_ids"]:
            assert t["attributes"] is None
            continue
        seen += 1
        number = int(dict(t["attributes"])["query_id"].removeprefix("q-"))
        assert number // 300 == index[t["tenant_id"]]
        # Every doc comes from the tenant's own corpus of 2000.
        assert {int(d.removeprefix("doc-")) // 2000 for d in t["retrieved_doc_ids"]} == {
            index[t["tenant_id"]]
        }
    assert seen > 1000


def test_synth_command_writes_the_rag_world_and_its_qrels(tmp_path: Path) -> None:
    out, qrels = tmp_path / "data", tmp_path / "qrels.jsonl"
    args = ["synth", "--out", str(out), "--tenants", "2", "--users", "20", "--days", "28"]
    args += ["--end", "2026-01-28", "--rag", "--qrels", str(qrels)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    facts = json.loads((out / "truth.json").read_text())
    assert [i["kind"] for i in facts["incidents"]][-1] == "rag_release"
    rows = [json.loads(line) for line in qrels.read_text().splitlines()]
    config = SynthConfig(tenants=2, users=20, days=28, end=dt.date(2026, 1, 28), rag=True)
    assert rows == rag_qrels(config).to_pylist()
    assert len(rows) == 2 * 300 * 3
    bad = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "x"), "--qrels", str(qrels)])
    assert bad.exit_code == 2
    assert "--qrels needs --rag" in bad.output
