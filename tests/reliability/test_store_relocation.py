"""Through the real flow (real Prefect API, real MLflow): a store copied elsewhere is reused from its new
place and registered there, and truncated weights in it are rebuilt rather than served and registered."""

from __future__ import annotations

import shutil

import pytest
from mlflow.tracking import MlflowClient

from flows.model_to_deployment import model_to_deployment

pytestmark = pytest.mark.integration
QUICK = {"validate": "validate:\n  enabled: false\n", "package": "package:\n  enabled: false\n"}


def stages(summary) -> dict[str, dict]:
    return {stage["stage"]: stage for stage in summary["stages"]}


def test_a_copied_store_serves_its_own_entries_and_rebuilds_truncated_weights(prefect_api, mlflow_uri, monkeypatch,
                                                                             tmp_path, make_recipe):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    text, _ = make_recipe("synthetic:tiny-llama", name="relocated-store", **QUICK)
    first = stages(model_to_deployment(recipe_yaml=text, store_root=str(tmp_path / "old")))
    assert first["build"]["status"] == "ran"

    shutil.copytree(tmp_path / "old", tmp_path / "new", symlinks=True)
    shutil.rmtree(tmp_path / "old")  # the old location is gone, as on another host or mount
    moved = stages(model_to_deployment(recipe_yaml=text, store_root=str(tmp_path / "new")))
    assert moved["build"]["status"] == "cached"
    assert all(stage["path"].startswith(str(tmp_path / "new")) for stage in moved.values() if stage.get("path"))

    weights = sorted((tmp_path / "new" / "build" / moved["build"]["key"]).rglob("*.safetensors"))
    assert weights
    with open(weights[0], "r+b") as handle:
        handle.truncate(64)
    summary = model_to_deployment(recipe_yaml=text, store_root=str(tmp_path / "new"))
    rebuilt = stages(summary)
    assert rebuilt["download"]["status"] == "cached" and rebuilt["build"]["status"] == "ran"
    assert weights[0].stat().st_size > 64
    version = MlflowClient(mlflow_uri).get_model_version_by_alias("relocated-store", "candidate")
    assert version.source == (tmp_path / "new" / "build" / rebuilt["build"]["key"]).as_uri()  # not the old place
