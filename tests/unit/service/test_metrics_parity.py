"""``GET /v1/metrics/{name}`` answers the same records as ``assay metrics <name> --format json``.

The data set is synthetic (``assay.synth``), ingested with ``assay ingest`` (files have no
lateness limit, HTTP has), and the CLI runs in process through typer's runner.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from assay.cli import app as cli
from assay.store import Workspace
from assay.synth import SynthConfig, write

METRICS = ("dau", "active", "rolling", "max-active", "retention", "sessions")
START = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=21)
CONFIG = SynthConfig(tenants=3, users=25, days=21, seed=11, start=START)
#: HTTP query parameter → CLI option.
OPTIONS = {
    "tenant_id": "--tenant",
    "since": "--since",
    "until": "--until",
    "window": "--window",
    "threshold": "--threshold",
    "by": "--by",
}

runner = CliRunner()


def day(n: int) -> str:
    return (START + dt.timedelta(days=n)).isoformat()


@pytest.fixture(scope="module")
def synthetic(module_service_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A service over a workspace filled with ``assay ingest`` of a synthetic data set."""
    root = tmp_path_factory.mktemp("parity")
    output = write(root / "synth", CONFIG)
    workspace = root / "ws"
    assert runner.invoke(cli, ["init", "-w", str(workspace)]).exit_code == 0
    ingested = runner.invoke(
        cli, ["ingest", *map(str, output.files), "-w", str(workspace), "-f", "json"]
    )
    assert ingested.exit_code in (0, 1), ingested.output
    s = module_service_factory(path=workspace)
    tenants = [t["tenant_id"] for t in output.truth["tenants"]]
    assert [r["tenant_id"] for r in s.get("/v1/tenants", s.admin).json()["data"]] == sorted(tenants)
    s.tenants = sorted(tenants)
    with Workspace.open(workspace) as ws:
        s.tenant_key = ws.keys.create(tenant_id=s.tenants[0], scopes=("read",))[1]
    return s


def resolve(s: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Placeholders T0, T1 → the data set's tenants (known once it is written)."""
    return {k: s.tenants[int(v[1:])] if k == "tenant_id" else v for k, v in params.items()}


def cli_records(workspace: Path, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    args = ["metrics", name, "-w", str(workspace), "--format", "json"]
    for k, v in params.items():
        args += [OPTIONS[k], str(v)]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    records: list[dict[str, Any]] = json.loads(result.stdout)
    return records


COMMON: list[dict[str, Any]] = [
    {},
    {"tenant_id": "T1", "by": "platform", "since": day(2), "until": day(15)},
]
SPECIFIC: list[tuple[str, dict[str, Any]]] = [
    ("dau", {"tenant_id": "T0"}),
    ("active", {"window": 3, "by": "locale"}),
    ("rolling", {"window": 3, "threshold": 0.1}),
    ("max-active", {"window": 5, "tenant_id": "T2"}),
]
CASES = [(name, params) for name in METRICS for params in COMMON] + SPECIFIC


@pytest.mark.parametrize(
    ("name", "params"),
    CASES,
    ids=[f"{n}-{'-'.join(p) or 'all'}" for n, p in CASES],
)
def test_http_metric_equals_the_cli_json(synthetic: Any, name: str, params: dict[str, Any]) -> None:
    s = synthetic
    query = resolve(s, params)
    response = s.get(f"/v1/metrics/{name}", s.admin, query)
    assert response.status_code == 200, response.text
    expected = cli_records(s.path, name, query)
    assert expected, "the case must have records to compare"
    assert response.json() == {"data": expected}


def test_tenant_key_without_tenant_id_reads_its_tenant(synthetic: Any) -> None:
    s = synthetic
    for name in METRICS:
        own = s.get(f"/v1/metrics/{name}", s.tenant_key)
        assert own.status_code == 200, own.text
        named = s.get(f"/v1/metrics/{name}", s.admin, {"tenant_id": s.tenants[0]})
        assert own.json() == named.json(), name
        assert {r["tenant_id"] for r in own.json()["data"]} == {s.tenants[0]}, name


@pytest.mark.parametrize(
    ("name", "params"),
    [("dau", {"window": 7}), ("sessions", {"threshold": 0.2}), ("retention", {"window": 2})],
)
def test_parameter_that_does_not_apply_is_422(
    synthetic: Any, h: Any, name: str, params: dict[str, Any]
) -> None:
    response = synthetic.get(f"/v1/metrics/{name}", synthetic.admin, params)
    assert response.status_code == 422
    error = h.error_of(response)
    assert (error["code"], error["field"]) == ("invalid_parameter", next(iter(params)))


def test_since_after_until_is_422(synthetic: Any, h: Any) -> None:
    response = synthetic.get("/v1/metrics/dau", synthetic.admin, {"since": day(5), "until": day(1)})
    assert response.status_code == 422
    assert h.error_of(response)["field"] == "since"
