"""The daily retrain: gate outcomes (first champion, challenger, rejected), leakage, the SLA with
an injected clock, and the run records. One registry and metadata store for the module (MLflow's
first database creation takes seconds); the tests run in file order."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from quality_data import quality_table

from assay import UsageError
from assay.models._registry import TAG_PREFIX, Registry
from assay.models._retrain import gate, parse_duration, retrain_on_table, runs
from assay.store._incidents import IncidentStore
from assay.store._meta import MetaStore

DAY = dt.date(2026, 3, 1)


class Clock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> tuple[Registry, MetaStore]:
    folder = tmp_path_factory.mktemp("ws")
    return Registry(folder), MetaStore(folder / "assay.sqlite")


def _builder(table: pa.Table, clock: Clock | None = None, delay: float = 0.0) -> Callable:  # type: ignore[type-arg]
    def build(attributes: Sequence[str]) -> pa.Table:
        assert list(attributes) == []
        if clock is not None:
            clock.now += delay
        return table

    return build


def _run(place: tuple[Registry, MetaStore], table: pa.Table, **kwargs):  # type: ignore[no-untyped-def]
    reg, meta = place
    clock = kwargs.pop("clock", Clock())
    delay = kwargs.pop("delay", 0.0)
    return retrain_on_table(
        reg,
        meta,
        _builder(table, clock, delay),
        "quality",
        model="logistic",
        n_boot=100,
        clock=clock,
        today=lambda: DAY,
        **kwargs,
    )


def _shuffled_before_test(table: pa.Table, test_days: int = 7, seed: int = 1) -> pa.Table:
    """The labels of every day before the test days permuted: nothing left to learn."""
    days = table.column("day").to_pylist()
    cut = max(days) - dt.timedelta(days=test_days - 1)
    y = np.asarray(table.column("label").to_pylist())
    early = np.flatnonzero(np.array([d < cut for d in days]))
    y[early] = np.random.default_rng(seed).permutation(y[early])
    return table.set_column(table.column_names.index("label"), "label", pa.array(y))


def _aliases(reg: Registry) -> dict[str, str]:
    return {k: str(v) for k, v in reg.client.get_registered_model("quality").aliases.items()}


# -- the gate alone (hand-made figures) ----------------------------------------------------------


def _m(ap: float | None, low: float | None, high: float | None, ece: float | None) -> dict:  # type: ignore[type-arg]
    return {"average_precision": {"estimate": ap, "ci_low": low, "ci_high": high}, "ece": ece}


def test_gate_rules_on_hand_made_figures() -> None:
    champ = _m(0.40, 0.32, 0.50, 0.01)
    assert gate(_m(0.33, 0.2, 0.4, 0.01), champ).passed  # inside the champion's interval
    assert gate(_m(0.32, 0.2, 0.4, 0.01), champ).passed  # on its lower end
    worse = gate(_m(0.31, 0.2, 0.4, 0.01), champ)
    assert not worse.passed
    assert "PR-AUC 0.3100 below" in worse.reasons[0]
    hot = gate(_m(0.60, 0.5, 0.7, 0.08), champ, max_ece=0.05)
    assert hot.reasons == ["calibration error 0.0800 above the bound 0.05"]
    leaky = gate(_m(0.60, 0.5, 0.7, 0.01), None, leakage_flagged=["n_errors"])
    assert leaky.reasons == ["leakage probe flagged n_errors"]
    assert gate(_m(0.05, 0.01, 0.1, 0.01), None).passed  # no champion: only calibration
    assert not gate(_m(None, None, None, 0.01), None).passed


def test_durations_parse_and_bad_ones_say_how() -> None:
    assert parse_duration("2h") == 7200.0
    assert parse_duration("1.5d") == 129600.0
    with pytest.raises(UsageError, match=r"e\.g\. 2h"):
        parse_duration("two hours")


# -- runs on a registry --------------------------------------------------------------------------


def test_first_passing_candidate_becomes_champion(place) -> None:  # type: ignore[no-untyped-def]
    reg, _meta = place
    out = _run(place, quality_table(days=30, rows_per_day=150, seed=3))
    assert out.outcome == "champion", out.gate
    assert out.champion is None
    assert out.candidate == "quality/1"
    assert _aliases(reg) == {"champion": "1"}
    assert out.gate is not None
    assert out.gate["champion"] is None
    assert out.incidents == []
    assert not out.sla_exceeded


def test_a_candidate_as_good_as_the_champion_becomes_challenger(place) -> None:  # type: ignore[no-untyped-def]
    reg, _meta = place
    out = _run(place, quality_table(days=30, rows_per_day=150, seed=3), seed=1)
    assert out.outcome == "challenger", out.gate
    assert out.champion == "quality/1"
    assert out.candidate == "quality/2"
    assert _aliases(reg) == {"champion": "1", "challenger": "2"}
    # Both were scored on the same rows: the test days of the candidate's split.
    gate_ = out.gate
    assert gate_ is not None
    assert gate_["candidate"]["rows"] == gate_["champion"]["rows"] == 7 * 150


def test_a_worse_candidate_is_rejected_and_opens_a_model_incident(place) -> None:  # type: ignore[no-untyped-def]
    reg, meta = place
    table = _shuffled_before_test(quality_table(days=30, rows_per_day=150, seed=3))
    out = _run(place, table)
    assert out.outcome == "rejected"
    assert out.gate is not None
    assert any("below the champion" in r for r in out.gate["reasons"])
    assert _aliases(reg) == {"champion": "1", "challenger": "2"}  # unchanged
    version = reg.client.get_model_version("quality", "3")
    assert json.loads(version.tags[TAG_PREFIX + "retrain_gate"])["outcome"] == "rejected"
    (incident,) = IncidentStore(meta).list(kind="model")
    assert incident.id in out.incidents
    assert incident.key == "model|quality|retrain-gate"
    assert incident.start == incident.end == DAY
    assert incident.observed == pytest.approx(
        out.gate["candidate"]["average_precision"]["estimate"]
    )


def test_a_run_over_its_sla_opens_an_incident_with_its_stage_timings(place) -> None:  # type: ignore[no-untyped-def]
    _reg, meta = place
    clock = Clock()
    out = _run(
        place,
        quality_table(days=30, rows_per_day=150, seed=3),
        seed=2,
        clock=clock,
        delay=3 * 3600.0,  # the dataset stage takes three hours
        sla_seconds=parse_duration("2h"),
    )
    assert out.sla_exceeded
    assert out.seconds == 3 * 3600.0
    stages = {s["stage"]: s["seconds"] for s in out.stages}
    assert stages["dataset"] == 3 * 3600.0
    assert stages["champion"] == stages["compare"] == 0.0
    sla = [i for i in IncidentStore(meta).list(kind="model") if i.key.endswith("retrain-sla")]
    assert len(sla) == 1
    assert sla[0].observed == 10800.0
    assert sla[0].expected == 7200.0


def test_a_leaky_feature_rejects_the_run_before_anything_is_registered(place) -> None:  # type: ignore[no-untyped-def]
    reg, meta = place
    table = quality_table(days=30, rows_per_day=150, seed=3)
    y = np.asarray(table.column("label").to_pylist(), dtype=float)
    leak = table.column_names.index("n_turns")
    table = table.set_column(leak, "n_turns", pa.array(y * 5.0 + 1.0))
    before = len(reg.client.search_model_versions("name='quality'"))
    out = _run(place, table)
    assert out.outcome == "rejected"
    assert out.candidate is None
    assert out.error is not None
    assert "n_turns" in out.error
    assert len(reg.client.search_model_versions("name='quality'")) == before
    keys = {i.key for i in IncidentStore(meta).list(kind="model")}
    assert "model|quality|retrain-leakage" in keys


def test_every_run_is_recorded_newest_first(place) -> None:  # type: ignore[no-untyped-def]
    _reg, meta = place
    table = runs(meta)
    assert table.column("status").to_pylist() == [
        "rejected",
        "challenger",
        "rejected",
        "challenger",
        "champion",
    ]
    assert table.column("kind").to_pylist() == ["models.retrain"] * 5
    assert table.column("candidate").to_pylist() == [
        None,
        "quality/4",
        "quality/3",
        "quality/2",
        "quality/1",
    ]
    sla_run = table.slice(1, 1).to_pylist()[0]
    assert sla_run["sla_exceeded"] is True
    assert sla_run["seconds"] == 10800.0
    names = [s["stage"] for s in json.loads(sla_run["stages"])]
    assert names[:3] == ["champion", "dataset", "train: split"]
    assert names[-2:] == ["compare", "alias"]
    assert "train: register" in names
