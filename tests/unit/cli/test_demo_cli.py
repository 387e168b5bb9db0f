"""`assay demo` output: its tables stay whole (its slices: test_root_cause_text.py)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from assay.cli import app

runner = CliRunner()


def test_a_cut_table_says_how_many_rows_follow_with_the_table_not_among_the_progress(
    tmp_path: Path,
) -> None:
    # 27 tenants: the demo shows 25 rows of its per-tenant table.
    args = ["demo", "--dir", str(tmp_path / "demo"), "--tenants", "27", "--users", "5"]
    args += ["--intent", "none"]
    result = runner.invoke(app, [*args, "--days", "14"])
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    first = out.index("tenants")
    assert out[first + 2].startswith("tenant-000 ")
    assert out[first + 26].startswith("tenant-024 ")
    assert out[first + 27] == "... 2 more rows"
    assert "more rows" not in result.stderr
