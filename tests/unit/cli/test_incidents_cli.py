"""`assay incidents list|show|ack|resolve` through typer's runner."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from assay.cli import app
from assay.store import NewIncident, Workspace

runner = CliRunner()

EXPLANATION = [
    {
        "slice": {"platform": "web", "locale": "fr"},
        "root_cause": True,
        "score": 0.91,
        "share": 0.8,
        "before": 100.0,
        "after": 30.0,
        "support": 500.0,
        "effect": "rate",
    },
    {
        "slice": {"platform": "ios"},
        "root_cause": False,
        "score": 0.05,
        "share": 0.1,
        "before": 50.0,
        "after": 45.0,
        "support": 200.0,
        "effect": "mix",
    },
]
RELEASES = [
    {"field": "model_version", "value": "m-2026-02", "first_seen": "2026-03-01", "days_before": 1}
]


def _new(**kw: Any) -> NewIncident:
    fields: dict[str, Any] = {
        "kind": "anomaly",
        "key": "dau|tenant=acme|locale=fr",
        "tenant_id": "acme",
        "metric": "dau",
        "slice": {"locale": "fr"},
        "start": dt.date(2026, 3, 2),
        "end": dt.date(2026, 3, 4),
        "direction": "down",
        "severity": "high",
        "expected": 120.0,
        "observed": 40.25,
        "score": 0.0001,
        "details": {},
    }
    fields.update(kw)
    return NewIncident(**fields)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """Three incidents: 1 open (with an explanation), 2 acknowledged drift of beta,
    3 resolved regression of acme across every slice."""
    root = tmp_path / "ws"
    with Workspace.init(root) as w:
        w.incidents.record(_new(details={"explanation": EXPLANATION, "releases": RELEASES}))
        w.incidents.record(
            _new(
                kind="drift",
                key="intent|tenant=beta",
                tenant_id="beta",
                metric="intent",
                slice={},
                direction="up",
                severity="low",
                expected=None,
                observed=None,
            )
        )
        w.incidents.record(
            _new(kind="regression", key="latency_p95|tenant=acme", metric="latency_p95", slice={})
        )
        w.incidents.acknowledge(2)
        w.incidents.resolve(3)
    return root


def _invoke(ws: Path, *args: str) -> Any:
    return runner.invoke(app, ["incidents", *args, "--workspace", str(ws)])


def test_list_shows_open_and_acknowledged_newest_first_as_json(ws: Path) -> None:
    result = _invoke(ws, "list", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["id"] for r in rows] == [2, 1]
    assert rows[1] == {
        "id": 1,
        "kind": "anomaly",
        "state": "open",
        "severity": "high",
        "tenant_id": "acme",
        "metric": "dau",
        "slice": "locale=fr",
        "start": "2026-03-02",
        "end": "2026-03-04",
        "direction": "down",
        "expected": 120.0,
        "observed": 40.25,
        "title": "dau down in acme (locale=fr)",
        "series": 1,
    }
    assert rows[0]["slice"] == "(whole tenant)"
    assert (rows[0]["state"], rows[0]["expected"]) == ("acknowledged", None)


@pytest.mark.parametrize(
    ("args", "ids"),
    [
        (["--state", "all"], [3, 2, 1]),
        (["--state", "resolved"], [3]),
        (["--state", "open"], [1]),
        (["--tenant", "beta"], [2]),
        (["--kind", "regression", "--state", "all"], [3]),
        (["--metric", "dau"], [1]),
        (["--state", "all", "--limit", "2"], [3, 2]),
    ],
)
def test_list_filters(ws: Path, args: list[str], ids: list[int]) -> None:
    result = _invoke(ws, "list", *args, "-f", "json")
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in json.loads(result.stdout)] == ids


def test_list_as_csv_has_the_documented_columns(ws: Path) -> None:
    result = _invoke(ws, "list", "-f", "csv", "--state", "all")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == [
        "id",
        "kind",
        "state",
        "severity",
        "tenant_id",
        "metric",
        "slice",
        "start",
        "end",
        "direction",
        "expected",
        "observed",
        "title",
        "series",
    ]
    assert [(r["id"], r["state"], r["observed"]) for r in rows] == [
        ("3", "resolved", "40.25"),
        ("2", "acknowledged", ""),
        ("1", "open", "40.25"),
    ]


def test_list_of_an_empty_workspace_is_an_empty_table(tmp_path: Path) -> None:
    Workspace.init(tmp_path / "empty").close()
    result = _invoke(tmp_path / "empty", "list", "-f", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    table = _invoke(tmp_path / "empty", "list")
    assert table.exit_code == 0
    assert table.stdout.split() == [
        "id",
        "kind",
        "state",
        "severity",
        "tenant_id",
        "metric",
        "slice",
        "start",
        "end",
        "direction",
        "expected",
        "observed",
        "title",
        "series",
    ]


def test_list_rejects_an_unknown_state(ws: Path) -> None:
    result = _invoke(ws, "list", "--state", "closed")
    assert result.exit_code == 2


def test_show_as_json_is_the_incident_as_a_dict(ws: Path) -> None:
    result = _invoke(ws, "show", "1", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    with Workspace.open(ws) as w:
        assert data == w.incidents.get(1).as_dict()
    assert data["details"]["explanation"][0]["slice"] == {"locale": "fr", "platform": "web"}
    assert (data["id"], data["state"], data["start"], data["score"]) == (
        1,
        "open",
        "2026-03-02",
        1e-4,
    )
    assert data["acknowledged_at"] is None


def test_show_as_a_table_prints_the_fields_explanation_and_releases(ws: Path) -> None:
    result = _invoke(ws, "show", "1")
    assert result.exit_code == 0, result.output
    out = result.stdout
    lines = out.splitlines()
    assert lines[0] == "incident 1: anomaly, open, severity high"
    fields = {
        parts[0]: parts[1] if len(parts) > 1 else ""
        for line in lines[1 : lines.index("")]
        for parts in [line.strip().split(None, 1)]
    }
    assert fields["key"] == "dau|tenant=acme|locale=fr"
    assert fields["slice"] == "locale=fr"
    assert fields["days"] == "2026-03-02 to 2026-03-04 (3 days)"
    assert (fields["expected"], fields["observed"], fields["score"]) == ("120", "40.25", "0.0001")
    assert "explanation" in lines
    header = lines[lines.index("explanation") + 1].split()
    assert header == [
        "slice",
        "root_cause",
        "score",
        "share",
        "before",
        "after",
        "support",
        "effect",
    ]
    first = lines[lines.index("explanation") + 2]
    assert first.startswith("locale=fr, platform=web")
    assert first.split()[-1] == "rate"
    assert "releases" in lines
    release = lines[lines.index("releases") + 2].split()
    assert release == ["model_version", "m-2026-02", "2026-03-01", "1"]


def test_show_without_details_prints_only_the_fields(ws: Path) -> None:
    result = _invoke(ws, "show", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "incident 2: drift, acknowledged, severity low"
    assert "explanation" not in result.stdout
    assert "(whole tenant)" in result.stdout


def test_ack_then_resolve_print_the_new_state(ws: Path) -> None:
    ack = _invoke(ws, "ack", "1")
    assert ack.exit_code == 0, ack.output
    assert "incident 1: open -> acknowledged" in ack.stderr
    assert ack.stdout == ""
    again = _invoke(ws, "ack", "1")
    assert again.exit_code == 0
    assert "incident 1 was already acknowledged" in again.stderr
    resolve = _invoke(ws, "resolve", "1")
    assert resolve.exit_code == 0
    assert "incident 1: acknowledged -> resolved" in resolve.stderr
    assert _invoke(ws, "resolve", "1").exit_code == 0
    with Workspace.open(ws) as w:
        assert w.incidents.get(1).state == "resolved"


def test_ack_of_a_resolved_incident_is_a_usage_error(ws: Path) -> None:
    result = _invoke(ws, "ack", "3")
    assert result.exit_code == 2
    assert "incident 3 is resolved" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["show", "ack", "resolve"])
def test_an_unknown_id_is_exit_code_2_with_a_hint(ws: Path, command: str) -> None:
    result = _invoke(ws, command, "99")
    assert result.exit_code == 2
    assert "no incident with id 99" in result.stderr
    assert "assay incidents list --state all" in result.stderr


def test_a_non_numeric_id_is_a_usage_error(ws: Path) -> None:
    assert _invoke(ws, "show", "abc").exit_code == 2


def test_a_missing_workspace_is_exit_code_2(tmp_path: Path) -> None:
    result = _invoke(tmp_path / "nowhere", "list")
    assert result.exit_code == 2
    assert "no assay workspace" in result.stderr
    assert not (tmp_path / "nowhere").exists()
