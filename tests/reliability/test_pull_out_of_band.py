"""`engineforge pull` checks MANIFEST.json against the digest its run recorded in the tracking
database when it logged the engine. Before, a weight changed in the artifact store together with a
rewritten MANIFEST.json (new sha256 and size) was pulled as "verified". Real MLflow store (SQLite, a
local artifact root), real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engineforge.tracking import mlflow_runs, mlflow_tags
from engineforge.artifacts import manifest, transfer
from engineforge.artifacts.pull import pull
from engineforge.errors import UserError
from engineforge.store import sha256_file

KEY = "f" * 64


@pytest.fixture
def registered(tmp_path, tiny_model_dir):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow_runs.client(uri)
    experiment = client.create_experiment("pull", artifact_location=(tmp_path / "artifacts").as_uri())
    run_id = client.create_run(experiment).info.run_id
    source = transfer.upload(uri, run_id, tiny_model_dir, "engine", "build", KEY)
    client.create_registered_model("tiny")
    client.create_model_version("tiny", source=source, run_id=run_id, tags={mlflow_tags.CONTENT_KEY_TAG: KEY})
    return uri, tmp_path / "artifacts" / run_id / "artifacts" / "engine"


def test_an_untouched_version_is_pulled(registered, tmp_path):
    uri, logged = registered
    pull(uri, "tiny/1", tmp_path / "pulled")
    assert sha256_file(tmp_path / "pulled" / "model.safetensors") == sha256_file(logged / "model.safetensors")


def test_a_tampered_weight_with_a_rewritten_manifest_is_refused(registered, tmp_path):
    uri, logged = registered
    weights = logged / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    rewritten = json.loads((logged / manifest.MANIFEST).read_text())
    rewritten["files"]["model.safetensors"] = {"size": len(data), "sha256": sha256_file(weights)}
    manifest.write(rewritten, logged)
    assert manifest.problems(logged, KEY) == []  # the manifest alone vouches for the tampered file
    with pytest.raises(transfer.ArtifactMismatch, match="MANIFEST.json: sha256 differs from the one its run recorded"):
        pull(uri, "tiny/1", tmp_path / "pulled")
    assert not any(p.is_file() for p in (tmp_path / "pulled").rglob("*"))


def test_a_version_whose_run_recorded_no_digest_is_refused(registered, tmp_path):
    uri, _ = registered
    version = mlflow_runs.client(uri).get_model_version("tiny", "1")
    mlflow_runs.client(uri).delete_tag(version.run_id, mlflow_tags.manifest_sha256("build"))
    with pytest.raises(UserError, match="recorded no engineforge.manifest_sha256.build tag"):
        pull(uri, "tiny/1", tmp_path / "pulled")
