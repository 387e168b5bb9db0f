"""The verdict rule on hand-made gate rows: slices can stop a rollout, the whole release
promotes it."""

from __future__ import annotations

import pytest

from assay.rollout._evaluate import GateRow, _verdict


def row(gate: str, slice_: str, decision: str) -> GateRow:
    return GateRow(gate, gate, slice_, {}, {}, {}, decision)


def test_the_whole_release_promotes_although_small_slices_have_not_decided() -> None:
    rows = [
        row("handoff", "all", "promote"),
        row("handoff", "tenant=t1", "continue"),
        row("handoff", "tenant=t2", "hold"),
        row("errors", "all", "promote"),
        row("errors", "locale=de-DE", "continue"),
    ]
    assert _verdict(rows, last_step=True) == "promote"
    assert _verdict(rows, last_step=False) == "continue"  # promotion only at the last step


def test_a_slice_rollback_rolls_back_whatever_the_whole_release_says() -> None:
    rows = [row("handoff", "all", "promote"), row("handoff", "locale=de-DE", "rollback")]
    assert _verdict(rows, last_step=True) == "rollback"


@pytest.mark.parametrize("other", ["continue", "hold"])
def test_every_gate_must_promote_on_the_whole_release(other: str) -> None:
    rows = [row("handoff", "all", "promote"), row("errors", "all", other)]
    assert _verdict(rows, last_step=True) == ("hold" if other == "hold" else "continue")


def test_a_gate_without_a_whole_release_row_promotes_when_every_decided_row_does() -> None:
    rows = [row("latency", "tenant=t1", "promote"), row("latency", "tenant=t2", "hold")]
    assert _verdict(rows, last_step=True) == "promote"
    rows.append(row("latency", "tenant=t3", "continue"))
    assert _verdict(rows, last_step=True) == "continue"
