"""docs/models.md against the code: every feature, label and default window is documented,
and the page names no feature the dataset does not have."""

from __future__ import annotations

import re
from pathlib import Path

from assay.models import CATEGORICAL_FEATURES, DEFAULT_LABEL_WINDOW_DAYS, LABELS, NUMERIC_FEATURES

DOC = Path(__file__).resolve().parents[3] / "docs" / "models.md"


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end >= 0 else len(text)]


def test_every_feature_has_a_row_and_every_row_is_a_feature() -> None:
    table = _section(DOC.read_text(encoding="utf-8"), "### Features")
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    documented = {
        name for row in rows for name in re.findall(r"`([a-z0-9_<>]+)`", row.split("|")[1])
    }
    kinds = {
        name: row.split("|")[2].strip()
        for row in rows
        for name in re.findall(r"`([a-z0-9_<>]+)`", row.split("|")[1])
    }
    features = {*NUMERIC_FEATURES, *CATEGORICAL_FEATURES, "attr_<key>"}
    assert documented == features
    for name in NUMERIC_FEATURES:
        assert kinds[name] == "numeric", name
    for name in CATEGORICAL_FEATURES:
        assert kinds[name] == "categorical", name


def test_every_label_and_its_default_window_is_documented() -> None:
    table = _section(DOC.read_text(encoding="utf-8"), "## Labels")
    rows = {row.split("|")[1].strip(): row for row in table.splitlines() if row.startswith("| `")}
    assert {re.sub(r"`| \(default\)", "", k) for k in rows} == set(LABELS)
    for key, row in rows.items():
        label = re.sub(r"`| \(default\)", "", key)
        days = DEFAULT_LABEL_WINDOW_DAYS[label]
        assert row.rstrip(" |").endswith(f"{days} day" + ("s" if days > 1 else "")), label
