"""One small synthetic data set, written once per test session and parsed with plain ``json``."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assay.synth import SynthConfig, SynthOutput, write

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def parse_instant(value: object) -> dt.datetime:
    """The UTC instant of an ``event_time`` value, parsed with the standard library."""
    if isinstance(value, int) and not isinstance(value, bool):
        return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=value)
    assert isinstance(value, str)
    assert RFC3339.match(value), value
    parsed = dt.datetime.fromisoformat(value)
    assert parsed.tzinfo is not None
    return parsed.astimezone(dt.UTC)


@pytest.fixture(scope="session")
def instant() -> Callable[[object], dt.datetime]:
    """``event_time`` (string or epoch ms) -> aware UTC datetime, independent of assay."""
    return parse_instant


#: Small enough to write in well under a second, large enough for every incident to show; fixed
#: dates (the default ends yesterday) so that the tests see the same data on any day.
SMALL = SynthConfig(tenants=6, users=150, days=28, seed=3, start=dt.date(2026, 1, 1))


@pytest.fixture(scope="session")
def small_config() -> SynthConfig:
    return SMALL


@pytest.fixture(scope="session")
def small_output(tmp_path_factory: pytest.TempPathFactory) -> SynthOutput:
    return write(tmp_path_factory.mktemp("synth-small"), SMALL)


@pytest.fixture(scope="session")
def small_rows(small_output: SynthOutput) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in small_output.files:
        with path.open(encoding="utf-8") as f:
            rows.extend(json.loads(line) for line in f)
    return rows


@pytest.fixture(scope="session")
def small_truth(small_output: SynthOutput) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(Path(small_output.truth_path).read_text("utf-8"))
    return loaded
