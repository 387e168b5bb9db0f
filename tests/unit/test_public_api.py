"""Each package's ``__all__`` names exactly what it exports, and every name imports."""

from __future__ import annotations

import importlib
import types

import pytest

PACKAGES = [
    "assay",
    "assay.schema",
    "assay.privacy",
    "assay.store",
    "assay.ingest",
    "assay.metrics",
    "assay.synth",
    "assay.evaluation",
    "assay.service",
    "assay.dashboard",
    "assay.anomaly",
    "assay.drift",
    "assay.profiles",
    "assay.models",
    "assay.rag",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_lists_every_public_name_and_each_imports(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    assert len(exported) == len(module.__all__), "duplicates in __all__"
    for item in exported:
        assert hasattr(module, item), f"{name}.{item} is in __all__ but missing"
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and not isinstance(v, types.ModuleType)
        and n not in {"annotations"}
    }
    assert public <= exported, f"public names not in __all__: {sorted(public - exported)}"


def test_the_workspace_users_open_has_metrics() -> None:
    import assay

    assert hasattr(assay.Workspace, "metrics")
    assert issubclass(assay.Workspace, importlib.import_module("assay.store").Workspace)
