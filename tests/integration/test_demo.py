"""The demo finds every incident that synth injected, through the metrics alone."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from assay._api import Workspace
from assay._demo import MARKER, _matches, run_demo
from assay._errors import UsageError


def test_demo_finds_each_injected_incident_as_an_explained_incident(tmp_path: Path) -> None:
    said: list[str] = []
    shown: list[tuple[str, pa.Table]] = []
    result = run_demo(
        tmp_path / "demo",
        tenants=8,
        users=100,
        days=56,
        seed=3,
        # Fixed days: the default (up to yesterday) moves the weekdays, and with them the data.
        end=dt.date(2026, 2, 25),
        say=said.append,
        show=lambda t, title: shown.append((title, t)),
        intent_data="small",
    )
    # Step 7: a session-quality model trained, registered as champion and monitored.
    assert result.model is not None
    assert result.model["version"] == "quality/1"
    # The true probabilities rank the test sessions better than chance (synth's law).
    assert 0.5 < result.model["bayes_roc_auc"] <= 1.0
    assert any(line.startswith("7/9  a session-quality model") for line in said)
    with Workspace.open(result.workspace) as ws:
        assert "champion" in ws.models.show("quality/1")["aliases"]
        assert result.model["monitor"]["model"] == "quality/1"
        # Step 8: the intent model answered over HTTP, and its predictions became events.
        assert "champion" in ws.models.show("intent/1")["aliases"]
        events = ws.events().filter(lambda t: t.model_version == "intent/1").to_pyarrow()
    assert result.intent is not None
    answer = result.intent["answer"]
    assert (answer["model"], answer["version"]) == ("intent", 1)
    # "weather" is one of the subset's ten intents (scripts/clinc150_subset.py).
    labels = [p["label"] for p in answer["predictions"]]
    assert labels[1] == "weather"
    assert answer["recorded"] == {"queued": 4, "accepted": 4, "duplicates": 0, "rejected": 0}
    assert sorted(events.column("intent").to_pylist()) == sorted(labels)
    assert set(events.column("tenant_id").to_pylist()) == {
        sorted(i["tenant_id"] for i in result.truth["incidents"] if i.get("tenant_id"))[0]
    }
    # Step 9: the rollout whose candidate hands off more in one locale was rolled back, with
    # that locale's handoff gate row as its evidence; the launch check blocked until signed.
    assert any(line.startswith("9/9  a rollout judged by user outcomes") for line in said)
    rollout = result.rollout
    assert rollout is not None
    assert rollout["state"] == "rolled_back"
    assert rollout["scenario_locale"] == "de-DE"
    assert [(g["gate"], g["slice"]) for g in rollout["evidence"]] == [("handoff", "locale=de-DE")]
    row = rollout["evidence"][0]
    assert row["decision"] == "rollback"
    assert row["candidate"]["rate"] > row["stable"]["rate"]
    assert any("rolled back automatically: gate handoff" in line for line in said)
    # The incident explains it: release against release, the bad locale the root cause.
    causes = [r["slice"] for r in rollout["explanation"]["rows"] if r["root_cause"]]
    assert {"locale": "de-DE"} in causes
    launch = rollout["launch"]
    # The intent model meets its criterion (in-scope misrouted rate, from the held-out
    # predictions registered at training): only the sign-off was missing.
    assert launch["model"] == "intent/1"
    assert launch["before"] == {"ready": False, "reasons": ["no sign-off yet"]}
    assert launch["after"] == {"ready": True, "reasons": []}
    kinds = {i["kind"] for i in result.truth["incidents"]}
    assert kinds == {"outage", "handoff_jump", "latency_regression", "rag_release"}
    assert any(
        line.startswith("    by how much, where, is it real: assay rag compare") for line in said
    )
    # Each injected incident as an incident; the two tied to a release also as regressions.
    assert result.found == {
        **dict.fromkeys(kinds, True),
        "handoff_jump (regression)": True,
        "latency_regression (regression)": True,
    }
    handoff = next(i for i in result.truth["incidents"] if i["kind"] == "handoff_jump")
    assert any(
        r["tenant_id"] == handoff["tenant_id"]
        and (r["field"], r["value"], r["metric"]) == ("model_version", "v2.1", "handoff_rate")
        for r in result.regressions
    )
    assert result.ingest.total("accepted") == result.events_written
    assert any("nothing doubled" in s for s in said)
    assert (result.truth["start"], result.truth["end"]) == ("2026-01-01", "2026-02-25")
    assert any("(2026-01-01 to 2026-02-25)" in s for s in said)
    assert shown[0][0] == "tenants"
    assert shown[0][1].num_rows == 8
    # The incidents are in the workspace, each opened with its explanation.
    assert result.incidents
    assert all(
        "explanation" in i.details or "explanation_error" in i.details for i in result.incidents
    )
    listed = dict(shown)["assay incidents list"]
    assert sorted(listed.column("id").to_pylist()) == sorted(i.id for i in result.incidents)
    outage = next(i for i in result.truth["incidents"] if i["kind"] == "outage")
    # One incident per problem: the outage's series (dau, errors, its slices) are one incident
    # of its tenant, and each injected problem is seen in exactly one incident.
    found = [i for i in result.incidents if i.key == f"tenant={outage['tenant_id']}"]
    assert found
    [dau] = [m for m in found[0].seen_in if m["metric"] == "dau" and not m["slice"]]
    assert dau["direction"] == "down"
    assert dau["root_cause"] == [{}]  # the whole tenant went quiet
    for injected in result.truth["incidents"]:
        assert sum(_matches(i, injected) for i in result.incidents) == 1, injected["kind"]
    latency = next(i for i in result.truth["incidents"] if i["kind"] == "latency_regression")
    [regression] = [i for i in result.incidents if _matches(i, latency)]
    assert regression.details["cause"] == {
        "field": "prompt_template",
        "value": latency["slice"]["prompt_template"],
    }
    assert len({m["tenant_id"] for m in regression.seen_in}) >= 3
    assert "None" not in listed.to_pandas().to_string()


def test_demo_refuses_to_wipe_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("keep")
    with pytest.raises(UsageError, match="not an assay demo folder"):
        run_demo(tmp_path / "mine", say=print, show=lambda t, s: None)
    assert (tmp_path / "mine" / "precious.txt").exists()
    assert not (tmp_path / "mine" / MARKER).exists()


def test_the_demo_data_ends_yesterday_by_default(tmp_path: Path) -> None:
    said: list[str] = []
    before = dt.datetime.now(dt.UTC).date()
    result = run_demo(
        tmp_path / "demo",
        tenants=2,
        users=10,
        days=14,
        say=said.append,
        show=lambda t, s: None,
        intent_data=None,
        rollout=False,
    )
    after = dt.datetime.now(dt.UTC).date()
    # Two weeks are too few for train, validation and test weeks: the model step says so.
    assert result.model is None
    assert any("skipped: time_split left train empty" in line for line in said)
    ends = {(d - dt.timedelta(days=1)).isoformat() for d in (before, after)}
    assert result.truth["end"] in ends
    assert result.truth["days"] == 14
