"""Two workspaces' registries written from two threads of one process keep to their own
stores (MLflow's fluent API points at one tracking URI per process)."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from quality_data import quality_table

from assay.models._onnx import to_onnx
from assay.models._registry import Registry
from assay.models._train import train_quality


def test_registries_of_two_workspaces_registering_at_once_stay_apart(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    model = train_quality(quality_table(days=30, rows_per_day=150, seed=3), model="logistic").model
    proto = to_onnx(model)
    regs = {name: Registry(tmp_path_factory.mktemp(name)) for name in ("left", "right")}
    for reg in regs.values():
        _ = reg.client  # create each database before the race
    start = threading.Barrier(len(regs))
    failures: list[BaseException] = []

    def work(name: str, reg: Registry) -> None:
        try:
            start.wait()
            for round_ in range(3):
                reg.register(
                    name,
                    proto,
                    inputs=(model.numeric, model.categorical),
                    params={"round": round_},
                    metrics={"test_roc_auc": 0.5},
                    tags={"assay.round": str(round_)},
                    texts={"evaluation/evaluation.json": json.dumps({"round": round_})},
                )
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=item) for item in regs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not failures, failures
    for name, reg in regs.items():
        assert reg.names() == [name]
        versions = reg.client.search_model_versions(f"name='{name}'")
        assert sorted(int(v.version) for v in versions) == [1, 2, 3]
        runs = reg.client.search_runs([reg._experiment_id()])
        assert len(runs) == 3
