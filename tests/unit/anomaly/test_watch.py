"""The fleet scan on a workspace: incidents recorded once, their life cycle, and the CLI."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import assay
from assay._errors import UsageError
from assay._records import causes_text
from assay.anomaly import ScanConfig, incident_causes, scan_workspace
from assay.cli import app
from assay.ingest import ingest_paths
from assay.synth import SynthConfig, write


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("watch")
    out = write(
        root / "data", SynthConfig(tenants=8, users=100, days=56, seed=3, start=dt.date(2026, 1, 1))
    )
    with assay.Workspace.open(root / "ws", create=True) as ws:
        ingest_paths(ws, [root / "data"])
    return root / "ws", out.truth


@pytest.fixture
def ws_path(base: tuple[Path, dict[str, Any]], tmp_path: Path) -> Path:
    shutil.copytree(base[0], tmp_path / "ws")
    return tmp_path / "ws"


def _first_day(truth: dict[str, Any]) -> dt.date:
    return dt.date.fromisoformat(truth["start"])


def test_a_scan_opens_incidents_once_and_a_rerun_changes_nothing(
    ws_path: Path, base: tuple[Path, dict[str, Any]]
) -> None:
    truth = base[1]
    with assay.Workspace.open(ws_path) as ws:
        first = scan_workspace(ws, since=_first_day(truth))
        outcomes = [o for _, o in first.recorded]
        assert outcomes
        assert set(outcomes) == {"opened"}
        stored = ws.incidents.list(state="all")
        assert len(stored) == len(first.opened) == len(first.recorded)
        # Every anomalous episode is seen in exactly one incident.
        members = [m["key"] + "@" + m["start"] for i in stored for m in i.details["seen_in"]]
        episodes = [f"{c.key}@{c.start.isoformat()}" for c in first.result.candidates]
        assert sorted(members) == sorted(episodes)
        again = scan_workspace(ws, since=_first_day(truth))
        assert {o for _, o in again.recorded} == {"unchanged"}
        assert len(ws.incidents.list(state="all")) == len(stored)


def test_the_outage_is_an_incident_with_its_expected_and_observed_values_and_root_cause(
    ws_path: Path, base: tuple[Path, dict[str, Any]]
) -> None:
    truth = base[1]
    outage = next(i for i in truth["incidents"] if i["kind"] == "outage")
    onset = dt.date.fromisoformat(outage["start"])
    with assay.Workspace.open(ws_path) as ws:
        scan_workspace(ws, since=_first_day(truth))
        found = [
            i
            for i in ws.incidents.list(tenant=outage["tenant_id"], metric="dau")
            if onset <= i.start <= onset + dt.timedelta(days=1)
        ]
        assert len(found) == 1
        inc = found[0]
        assert (inc.kind, inc.key, inc.tenant_id, inc.severity, inc.state) == (
            "anomaly",
            f"tenant={outage['tenant_id']}",
            outage["tenant_id"],
            "high",
            "open",
        )
        assert inc.details["cause"] is None  # no release: the tenant's own incident
        # The outage moves more than the dau (errors too): one incident, one member each.
        [member] = [m for m in inc.details["seen_in"] if m["metric"] == "dau"]
        assert member["direction"] == "down"
        start, end = dt.date.fromisoformat(member["start"]), dt.date.fromisoformat(member["end"])
        # The observed value is the mean of the stored dau over the episode's days.
        dau = {
            r["day"]: r["dau"]
            for r in ws.metrics.dau(tenant=outage["tenant_id"], since=start, until=end).to_pylist()
        }
        days = [d for d in dau if start <= d <= end]
        assert member["observed"] == pytest.approx(sum(dau[d] for d in days) / len(days))
        assert member["observed"] < 0.5 * member["expected"]
        assert member["root_cause"] == [{}]  # the whole tenant went quiet
        assert inc.details["explanation"][0]["root_cause"] is True
        assert inc.details["explained_day"] == inc.start.isoformat()
        assert "dau down" in inc.title
        assert inc.title.endswith(
            f"in {outage['tenant_id']} ({len(inc.details['seen_in'])} series)"
        )


_SIGNALS = {
    "outage": {"dau", "active_users", "error_rate"},
    "handoff_jump": {"handoff_rate"},
    "latency_regression": {"latency_p95"},
}


def _belongs(member: dict[str, Any], injected: dict[str, Any]) -> bool:
    """A series' episode is the injected problem's: one of its metrics, its tenant (if it had
    one), starting within two days of its onset."""
    onset = dt.date.fromisoformat(injected["start"])
    return (
        member["metric"] in _SIGNALS[injected["kind"]]
        and injected.get("tenant_id") in (None, member["tenant_id"])
        and onset <= dt.date.fromisoformat(member["start"]) <= onset + dt.timedelta(days=2)
    )


def test_each_injected_problem_is_one_incident_across_tenants_and_slices(
    ws_path: Path, base: tuple[Path, dict[str, Any]]
) -> None:
    truth = base[1]
    with assay.Workspace.open(ws_path) as ws:
        for by in (None, "locale"):
            scan_workspace(ws, since=_first_day(truth), by=by)
        incidents = ws.incidents.list(state="all")
    for injected in truth["incidents"]:
        hits = [i for i in incidents if any(_belongs(m, injected) for m in i.details["seen_in"])]
        assert len(hits) == 1, (injected["kind"], [i.title for i in hits])
    latency = next(i for i in truth["incidents"] if i["kind"] == "latency_regression")
    template = latency["slice"]["prompt_template"]
    [regression] = [i for i in incidents if i.key == f"release|prompt_template={template}"]
    seen = regression.details["seen_in"]
    tenants = {m["tenant_id"] for m in seen}
    assert len(tenants) >= 3
    assert regression.tenant_id is None
    assert any(m["slice"] for m in seen)  # locale or model_version slices ...
    assert any(not m["slice"] for m in seen)  # ... and whole tenants
    assert regression.title.startswith(f"prompt_template={template}: latency_p95 up in ")
    assert f"in {len(tenants)} tenants ({len(seen)} series)" in regression.title
    # No cause reads "None": a missing value reads "(none)", and only when it is the finding.
    for inc in incidents:
        texts = [inc.title, causes_text(incident_causes(inc))]
        texts += [causes_text(m["root_cause"]) for m in inc.details["seen_in"]]
        assert not any("None" in t for t in texts), texts


def test_resolved_incidents_are_not_raised_again_and_acknowledged_ones_stay_so(
    ws_path: Path, base: tuple[Path, dict[str, Any]]
) -> None:
    truth = base[1]
    with assay.Workspace.open(ws_path) as ws:
        scan_workspace(ws, since=_first_day(truth))
        incidents = ws.incidents.list(state="all")
        resolved, acked = incidents[0], incidents[1]
        ws.incidents.resolve(resolved.id)
        ws.incidents.acknowledge(acked.id)
        again = scan_workspace(ws, since=_first_day(truth))
        outcome = {i.id: o for i, o in again.recorded if i is not None}
        assert outcome[resolved.id] == "suppressed"
        assert ws.incidents.get(resolved.id).state == "resolved"
        assert ws.incidents.get(acked.id).state == "acknowledged"
        assert not again.opened


def test_a_dry_run_records_nothing_and_since_defaults_to_the_last_week(ws_path: Path) -> None:
    with assay.Workspace.open(ws_path) as ws:
        report = scan_workspace(ws, record=False)
        last = ws.last_event_day()
        assert last is not None
        assert (report.since, report.until) == (last - dt.timedelta(days=6), last)
        assert report.recorded == []
        assert ws.incidents.list(state="all") == []
        days = set(report.result.points.column("day").to_pylist())
        assert min(days) >= last - dt.timedelta(days=6)


def test_a_day_verdict_does_not_depend_on_the_window_scanned(
    ws_path: Path, base: tuple[Path, dict[str, Any]]
) -> None:
    truth = base[1]
    with assay.Workspace.open(ws_path) as ws:
        last = ws.last_event_day()
        assert last is not None
        since = last - dt.timedelta(days=6)
        short = scan_workspace(ws, since=since, record=False).result.points
        full = scan_workspace(ws, since=_first_day(truth), record=False).result.points
    keep = [r for r in full.to_pylist() if r["day"] >= since]
    key = lambda r: (r["tenant_id"], r["metric"], r["day"])  # noqa: E731
    a, b = sorted(short.to_pylist(), key=key), sorted(keep, key=key)
    assert [key(r) for r in a] == [key(r) for r in b]
    assert [r["anomaly"] for r in a] == [r["anomaly"] for r in b]
    for x, y in zip(a, b, strict=True):  # floats: equal up to the order of summation
        for name in ("value", "expected", "low", "high", "z", "p_value", "q_value"):
            assert x[name] == pytest.approx(y[name], rel=1e-9, abs=1e-12, nan_ok=True), name


def test_bad_arguments_are_usage_errors(ws_path: Path) -> None:
    with assay.Workspace.open(ws_path) as ws:
        with pytest.raises(UsageError, match="by must be one of"):
            scan_workspace(ws, by="country")
        with pytest.raises(UsageError, match="after until"):
            scan_workspace(ws, since=dt.date(2026, 3, 1), until=dt.date(2026, 2, 1))
    with pytest.raises(UsageError, match="fdr"):
        ScanConfig(fdr=2.0)


def test_an_empty_workspace_scans_nothing(tmp_path: Path) -> None:
    with assay.Workspace.open(tmp_path / "empty", create=True) as ws:
        report = scan_workspace(ws)
        assert (report.result.series, report.result.tests, report.recorded) == (0, 0, [])


# -- CLI ----------------------------------------------------------------------------------------


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_cli_scan_exits_1_when_it_opens_an_incident_and_0_when_it_does_not(
    ws_path: Path, base: tuple[Path, dict[str, Any]]
) -> None:
    since = base[1]["start"]
    first = _cli("anomalies", "scan", "-w", str(ws_path), "--since", since, "--format", "json")
    assert first.exit_code == 1, first.output
    data = json.loads(first.stdout)
    assert data["opened"] == len(data["incidents"]) > 0
    assert {r["outcome"] for r in data["incidents"]} == {"opened"}
    assert all(r["title"] and r["metric"] and r["state"] == "open" for r in data["incidents"])
    again = _cli("anomalies", "scan", "-w", str(ws_path), "--since", since, "--format", "json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["incidents"] == []
    listed = _cli("incidents", "list", "-w", str(ws_path), "--format", "json")
    assert len(json.loads(listed.stdout)) == data["opened"]


def test_cli_dry_run_prints_the_runs_and_records_nothing(
    ws_path: Path, base: tuple[Path, dict[str, Any]]
) -> None:
    since = base[1]["start"]
    out = _cli("anomalies", "scan", "-w", str(ws_path), "--since", since, "--dry-run", "-f", "csv")
    assert out.exit_code == 1, out.output
    header = out.stdout.splitlines()[0]
    assert header.startswith("severity,tenant_id,slice,metric,start,end,direction,expected")
    assert "dry run" in out.stderr
    listed = _cli("incidents", "list", "-w", str(ws_path), "--format", "json")
    assert json.loads(listed.stdout) == []


def test_cli_rejects_unknown_metrics_and_slices(ws_path: Path) -> None:
    bad = _cli("anomalies", "scan", "-w", str(ws_path), "--metrics", "revenue")
    assert bad.exit_code == 2
    assert "metrics must be" in bad.stderr
    bad_by = _cli("anomalies", "scan", "-w", str(ws_path), "--by", "country")
    assert bad_by.exit_code == 2
