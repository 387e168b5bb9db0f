"""Slices and missing values read the same in every command (issue 18, item 10).

A null slice value is ``(none)`` (never ``None`` or ``null``), the empty slice is
``(whole tenant)`` (never blank, never a leading empty item), and a missing number is ``(none)``
in tables (never ``nan``) and null in JSON.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from assay._demo import _incident_table, _say_match
from assay.anomaly import _watch
from assay.cli import app
from assay.store import NewIncident, Workspace

runner = CliRunner()

# The explanation of an incident whose root causes are the whole tenant and the events in no
# flight (the leaf value of `flight` is null there), as the scan stores it.
EXPLANATION = [
    {
        "slice": {},
        "root_cause": True,
        "score": 0.9,
        "share": 0.6,
        "before": 10.0,
        "after": 2.0,
        "support": 100.0,
    },
    {
        "slice": {"flight": None},
        "root_cause": True,
        "score": 0.8,
        "share": 0.4,
        "before": None,
        "after": 1.0,
        "support": 40.0,
    },
]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    with Workspace.init(root) as w:
        w.incidents.record(
            NewIncident(
                kind="anomaly",
                key="dau|tenant=acme",
                tenant_id="acme",
                metric="dau",
                slice={},
                start=dt.date(2026, 3, 2),
                end=dt.date(2026, 3, 2),
                direction="down",
                severity="high",
                expected=100.0,
                observed=20.0,
                score=0.001,
                details={"explanation": EXPLANATION},
            )
        )
    return root


def _lines_after(text: str, title: str) -> list[str]:
    lines = text.splitlines()
    return lines[lines.index(title) + 1 :]


def test_scan_root_cause_names_the_whole_tenant_and_the_null_flight(
    ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The scan itself is tested in tests/unit/anomaly; here it reports the stored incident as
    # opened, so that the command formats a real explanation.
    real = _watch.scan_workspace

    def scan(w: Any, **kw: Any) -> _watch.ScanReport:
        report = real(w, **{**kw, "record": False})
        report.recorded.append((w.incidents.get(1), "opened"))
        return report

    monkeypatch.setattr(_watch, "scan_workspace", scan)
    result = runner.invoke(app, ["anomalies", "scan", "--workspace", str(ws), "-f", "json"])
    assert result.exit_code == 1, result.output
    row = json.loads(result.stdout)["incidents"][0]
    assert row["slice"] == "(whole tenant)"
    # A slice on a missing value is not a cause beside a cause on known values (issue 12).
    assert row["root_cause"] == "(whole tenant)"

    table = runner.invoke(app, ["anomalies", "scan", "--workspace", str(ws)])
    line = _lines_after(table.stdout, "anomalies")[1]
    assert "(whole tenant)  dau down in acme" in line
    assert "None" not in table.stdout


def test_incidents_show_names_the_null_flight_and_a_missing_before(ws: Path) -> None:
    result = runner.invoke(app, ["incidents", "show", "1", "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    rows = _lines_after(result.stdout, "explanation")
    assert rows[0].split()[:5] == ["slice", "root_cause", "score", "share", "before"]
    assert rows[1].startswith("(whole tenant)  ")
    assert rows[2].split()[:5] == ["flight=(none)", "true", "0.8", "0.4", "(none)"]
    assert "null" not in result.stdout


def test_incidents_list_names_the_whole_tenant(ws: Path) -> None:
    result = runner.invoke(app, ["incidents", "list", "--workspace", str(ws), "-f", "csv"])
    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()[:2]
    slice_at = header.split(",").index("slice")
    assert row.split(",")[slice_at] == "(whole tenant)"


def test_explain_table_shows_a_missing_before_as_none_and_json_as_null(tmp_path: Path) -> None:
    # Slice b has no rows in the baseline: its before rate is undefined (0 / 0).
    src = tmp_path / "rates.csv"
    src.write_text("t,flight,num,den\n1,a,1,10\n2,a,1,10\n3,a,1,10\n4,a,1,10\n4,b,9,10\n")
    args = ["explain", "table", str(src), "--time-col", "t", "--dims", "flight"]
    args += ["--value", "num", "--total", "den", "--at", "4", "--baseline", "3"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()[:2]
    cells = dict(zip(header.split(), row.split(), strict=True))
    assert (cells["slice"], cells["before"], cells["after"]) == ("flight=b", "(none)", "0.9")

    as_json = runner.invoke(app, [*args, "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)[0]["before"] is None  # valid JSON: no NaN


def test_the_demo_names_the_whole_tenant_slice(ws: Path) -> None:
    with Workspace.open(ws) as w:
        incident = w.incidents.get(1)
    row = _incident_table([incident]).to_pylist()[0]
    assert (row["title"], row["root_cause"]) == ("dau down in acme", "(whole tenant)")
    said: list[str] = []
    injected = {"kind": "outage", "metric": "dau", "tenant_id": "acme", "start": "2026-03-02"}
    _say_match({**injected, "slice": {}}, [incident], said.append)
    assert said[0] == "  - outage: dau of acme (whole tenant) from 2026-03-02"
    assert said[1] == "    found: incident 1, high, 2026-03-02 to 2026-03-02: dau down in acme"
    assert said[2] == (
        "    seen in acme; e.g. dau of acme (whole tenant): expected 100 -> observed 20"
    )
    assert said[3] == "    root cause: (whole tenant)"
