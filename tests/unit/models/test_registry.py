"""The MLflow registry: a round trip read back through MLflow's own client, references and
their errors, aliases, the ONNX artifact. One registry per module (MLflow's first database
creation takes seconds)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from quality_data import quality_table

from assay import NotFoundError, UsageError
from assay.models._onnx import onnx_scores, session, to_onnx
from assay.models._registry import Registry, fingerprint
from assay.models._train import train_quality


@pytest.fixture(scope="module")
def trained():  # type: ignore[no-untyped-def]
    return train_quality(quality_table(days=30, rows_per_day=150, seed=9), model="logistic")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, trained) -> Registry:  # type: ignore[no-untyped-def]
    reg = Registry(tmp_path_factory.mktemp("ws"))
    model = trained.model
    for i in range(2):
        reg.register(
            "quality",
            to_onnx(model),
            inputs=(model.numeric, model.categorical),
            params={"kind": "logistic", "seed": i},
            metrics={"test_average_precision": 0.25 + i / 10, "test_roc_auc": 0.75},
            tags={"assay.kind": "logistic", "assay.label": "thumbs_down", "assay.round": str(i)},
            texts={"evaluation/evaluation.json": json.dumps({"round": i})},
        )
    return reg


def test_round_trip_through_mlflows_own_client(registry: Registry) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=registry.uri, registry_uri=registry.uri)
    registry.promote("quality", 1, "champion")
    registry.promote("quality", 2, "challenger")
    model = client.get_registered_model("quality")
    assert {k: int(v) for k, v in model.aliases.items()} == {"champion": 1, "challenger": 2}
    mv = client.get_model_version("quality", "2")
    assert mv.tags["assay.round"] == "1"
    run = client.get_run(mv.run_id)
    assert run.data.params == {"kind": "logistic", "seed": "1"}
    assert run.data.metrics == {"test_average_precision": pytest.approx(0.35), "test_roc_auc": 0.75}
    assert run.data.tags["assay.label"] == "thumbs_down"
    assert run.info.artifact_uri.startswith((registry.artifacts.resolve()).as_uri())
    text = Path(client.download_artifacts(mv.run_id, "evaluation/evaluation.json")).read_text()
    assert json.loads(text) == {"round": 1}
    # The default store is the workspace's own SQLite file.
    assert (registry.workspace / "models" / "mlflow.db").is_file()


def test_references_resolve_to_versions(registry: Registry) -> None:
    registry.promote("quality", 1, "champion")
    assert registry.resolve("quality/2").version == 2
    assert registry.resolve("quality@champion").version == 1
    assert registry.resolve("quality").version == 1  # the champion, not the latest
    assert registry.resolve("quality/1").aliases == ("champion",)
    listed = registry.list()
    assert listed.column("version").to_pylist() == [1, 2]
    assert listed.column("aliases").to_pylist()[0] == "champion"
    assert listed.column("test_average_precision").to_pylist() == pytest.approx([0.25, 0.35])


@pytest.mark.parametrize(
    ("ref", "error", "message"),
    [
        ("nope", NotFoundError, "no registered model 'nope'; known models: quality"),
        ("quality@staging", NotFoundError, "has no alias 'staging'"),
        ("quality/9", NotFoundError, r"has no version 9 \(its versions: 1, 2\)"),
        ("quality/x", UsageError, "NAME, NAME@ALIAS or NAME/VERSION"),
        ("bad name", UsageError, "a model name must be"),
    ],
)
def test_unknown_references_say_what_exists(
    registry: Registry, ref: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        registry.resolve(ref)


def test_the_registered_onnx_scores_like_the_native_model(registry: Registry, trained) -> None:  # type: ignore[no-untyped-def]
    found, raw = registry.load_onnx("quality/2")
    assert str(found) == "quality/2"
    test = trained.split.test
    np.testing.assert_allclose(
        onnx_scores(session(raw), test), trained.model.predict_proba(test), atol=1e-5
    )


def test_fingerprint_follows_the_content() -> None:
    a = pa.table({"x": [1.0, 2.0], "y": ["a", "b"]})
    same = pa.table({"x": [1.0, 2.0], "y": ["a", "b"]})
    changed = pa.table({"x": [1.0, 2.5], "y": ["a", "b"]})
    assert fingerprint(a) == fingerprint(same)
    assert fingerprint(a) != fingerprint(changed)
    assert fingerprint(a) != fingerprint(a.replace_schema_metadata({b"assay.label": b"handoff"}))
    assert fingerprint(a).startswith("sha256:")
    assert len(fingerprint(a)) == len("sha256:") + 64


def test_the_mlflow_uri_setting_points_the_registry_elsewhere(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from assay.models._lifecycle import registry
    from assay.store import Settings

    elsewhere = tmp_path / "server.db"
    ws = SimpleNamespace(
        path=tmp_path / "ws", settings=Settings(mlflow_uri=f"sqlite:///{elsewhere}")
    )
    reg = registry(ws)  # type: ignore[arg-type]
    assert reg.uri == f"sqlite:///{elsewhere}"
    assert reg.names() == []
    assert elsewhere.is_file()
    assert not (tmp_path / "ws" / "models").exists()
    default = registry(SimpleNamespace(path=tmp_path / "ws", settings=Settings()))  # type: ignore[arg-type]
    assert default.uri == f"sqlite:///{tmp_path / 'ws' / 'models' / 'mlflow.db'}"
