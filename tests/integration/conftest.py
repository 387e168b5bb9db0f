"""Integration fixtures: the one Spark session of the test run.

Spark takes ~20 s to start, so every ``@pytest.mark.spark`` test shares one local[2] engine
for the whole session; it is stopped when the run ends. Tests run under TZ=Asia/Kolkata (see
tests/conftest.py): the engine pins the session and the JVMs to UTC itself.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from assay.store._engines import SparkEngine, connect

# The suite runs with ``--import-mode=importlib``: this folder on ``sys.path`` lets the tests
# import their helper module ``live_server``.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def spark_engine() -> Iterator[SparkEngine]:
    engine = connect("pyspark", spark_master="local[2]")
    assert isinstance(engine, SparkEngine)
    yield engine
    engine.close()
    engine.session.stop()
