"""`engineforge pull` checks MANIFEST.json against the digest recorded out of band when the engine was
logged: the logging run's tag in the tracking database, and the `logged` record of the registering
run's lock file (itself checked against the run's `lock_sha256` tag). Before, a weight changed in the
artifact store together with a rewritten MANIFEST.json (new sha256 and size) was pulled as
"verified", and the lock file carried no digest. Real MLflow store (SQLite, a local artifact root), a
real store entry logged by the remote tier, the lock file written as the flow writes it; real files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engineforge.artifacts import lockfile
from engineforge.tracking import mlflow_runs, mlflow_tags
from engineforge.tracking.mlflow_runs import TrackedRun
from engineforge.artifacts import manifest, transfer
from engineforge.artifacts.pull import pull
from engineforge.artifacts.remote_tier import RemoteTier
from engineforge.cli.app import main
from engineforge.errors import UserError
from engineforge.recipe.file import parse_recipe
from engineforge.stages.run_stage import run_stage
from engineforge.runtimes import get_runtime
from engineforge.stage_result import StageOutput, StageResult
from engineforge.stages.context import RunContext
from engineforge.stages.register import register
from engineforge.artifacts.store import Store, sha256_file
from tests.conftest import recipe_text

KEY = "f" * 64


def copy_of(model: Path):
    def produce(workdir: Path) -> StageOutput:
        shutil.copytree(model, workdir, dirs_exist_ok=True)
        return StageOutput(summary="built")
    return produce


@pytest.fixture
def registered(tmp_path, tiny_model_dir):
    """A run that built, logged (remote tier) and registered (the register stage) the tiny model and
    wrote its lock file, as flows/model_to_deployment.py does: (tracking URI, the logged engine's directory, the run id)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow_runs.client(uri)
    experiment = client.create_experiment("pull", artifact_location=(tmp_path / "artifacts").as_uri())
    run_id = client.create_run(experiment).info.run_id
    remote = RemoteTier(TrackedRun(uri, run_id))
    store = Store(tmp_path / "store", remote)
    built = run_stage(store, "build", KEY, copy_of(tiny_model_dir))
    source = remote.upload(store, "build", KEY)
    recipe = parse_recipe(recipe_text("synthetic:tiny-llama", name="tiny"), "<test>")
    core = lockfile.lock_core(recipe, {"build": built}, {"tp": 1}, remote.logged_manifests({"build": KEY}))
    lock = lockfile.complete_lock(core, None)
    remote.mlflow_run.log_text(lockfile.dumps(lock), lockfile.LOCK_FILE)
    client.set_tag(run_id, mlflow_tags.LOCK_SHA256_TAG, lock["core_sha256"])
    ctx = RunContext(runtime=get_runtime(recipe.runtime), store_root=str(store.root), mlflow_run=TrackedRun(uri, run_id),
                     remote_tier=True)
    registered = register(recipe, built, None, StageResult(stage="download", status="ran", outputs={"revision": "r"}), ctx)
    assert registered.outputs["version"] == "1" and mlflow_runs.client(uri).get_model_version("tiny", "1").source == source
    return uri, tmp_path / "artifacts" / run_id / "artifacts", run_id


def rewrite_lock(artifacts: Path, change) -> None:
    """Rewrite the logged lock file as one who can write the artifact store would."""
    path = artifacts / lockfile.LOCK_FILE
    lock = json.loads(path.read_text())
    change(lock)
    path.write_text(lockfile.dumps(lock))


def test_the_lock_file_records_where_the_engine_lies_and_its_manifests_digest(registered):
    uri, artifacts, run_id = registered
    lock = json.loads((artifacts / lockfile.LOCK_FILE).read_text())
    assert lock["logged"] == {"build": {"uri": f"runs:/{run_id}/engine",
                                        "manifest_sha256": sha256_file(artifacts / "engine" / manifest.MANIFEST)}}
    assert lockfile.core_digest(lockfile.core_of(lock)) == lock["core_sha256"]  # read back, it hashes as written


def test_an_untouched_version_is_pulled_and_says_so_in_one_line(registered, tmp_path, monkeypatch, capsys):
    uri, artifacts, _ = registered
    logged = artifacts / "engine"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)  # set by a process's first download
    assert main(["pull", "tiny/1", "--to", str(tmp_path / "pulled")]) == 0
    out, err = capsys.readouterr()
    assert err == "" and out.startswith("tiny version 1 (runs:/") and "verified in" in out, (out, err)  # no download bars
    assert sha256_file(tmp_path / "pulled" / "model.safetensors") == sha256_file(logged / "model.safetensors")


def test_a_tampered_weight_with_a_rewritten_manifest_is_refused(registered, tmp_path):
    uri, artifacts, _ = registered
    logged = artifacts / "engine"
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
    uri, _, _ = registered
    version = mlflow_runs.client(uri).get_model_version("tiny", "1")
    mlflow_runs.client(uri).delete_tag(version.run_id, mlflow_tags.manifest_sha256("build"))
    with pytest.raises(UserError, match="recorded no engineforge.manifest_sha256.build tag"):
        pull(uri, "tiny/1", tmp_path / "pulled")


def test_a_lock_file_whose_digest_was_rewritten_to_match_is_refused_naming_the_lock_file(registered, tmp_path):
    """The attacker rewrites the weight, MANIFEST.json and the lock file's digest: the lock file no
    longer hashes to the lock_sha256 its run recorded in the tracking database."""
    uri, artifacts, run_id = registered
    rewrite_lock(artifacts, lambda lock: lock["logged"]["build"].update(manifest_sha256="0" * 64))
    with pytest.raises(transfer.ArtifactMismatch) as refused:
        pull(uri, "tiny/1", tmp_path / "pulled")
    assert str(refused.value) == (f"{lockfile.LOCK_FILE} of run {run_id} differs from the {mlflow_tags.LOCK_SHA256_TAG} "
                                  "tag its run recorded in the tracking database; nothing was pulled")
    assert not (tmp_path / "pulled").exists()


def test_a_logging_run_tag_that_disagrees_with_the_lock_file_is_refused_naming_the_lock_file(registered, tmp_path):
    uri, _, run_id = registered
    mlflow_runs.client(uri).set_tag(run_id, mlflow_tags.manifest_sha256("build"), "1" * 64)
    with pytest.raises(transfer.ArtifactMismatch, match=f"^{lockfile.LOCK_FILE} of run {run_id} records the engine as "
                                                        f"runs:/{run_id}/engine with MANIFEST.json sha256 [0-9a-f]{{64}}, the "
                                                        f"tracking database runs:/{run_id}/engine with 1{{64}}; nothing was pulled$"):
        pull(uri, "tiny/1", tmp_path / "pulled")


@pytest.mark.parametrize("garbage", [b"[]", b"{", b"[" * 100_000, b'{"stages": 5}', b"\xff"])
def test_a_lock_file_that_is_not_one_is_refused_in_one_line(registered, tmp_path, garbage):
    uri, artifacts, run_id = registered
    (artifacts / lockfile.LOCK_FILE).write_bytes(garbage)
    with pytest.raises(transfer.ArtifactMismatch, match=f"^{lockfile.LOCK_FILE} of run {run_id} differs from"):
        pull(uri, "tiny/1", tmp_path / "pulled")


def test_a_lock_file_without_the_digest_is_refused(registered, tmp_path):
    """A version registered before the lock file recorded the digest: its lock, consistent with its tag, has no `logged`."""
    uri, artifacts, run_id = registered
    rewrite_lock(artifacts, lambda lock: lock.pop("logged"))
    lock = json.loads((artifacts / lockfile.LOCK_FILE).read_text())
    mlflow_runs.client(uri).set_tag(run_id, mlflow_tags.LOCK_SHA256_TAG, lockfile.core_digest(lockfile.core_of(lock)))
    with pytest.raises(UserError, match=f"^{lockfile.LOCK_FILE} of run {run_id} records no MANIFEST.json digest for build"):
        pull(uri, "tiny/1", tmp_path / "pulled")


def version_tag(uri: str) -> str:
    return mlflow_runs.client(uri).get_model_version("tiny", "1").tags.get(mlflow_tags.manifest_sha256("build"))


def test_the_registered_version_carries_its_manifests_digest(registered):
    uri, artifacts, _ = registered
    assert version_tag(uri) == sha256_file(artifacts / "engine" / manifest.MANIFEST)


def test_a_rewritten_version_tag_is_refused_in_one_line_naming_the_version_and_the_file(
        registered, tmp_path, monkeypatch, capsys):
    uri, artifacts, run_id = registered
    logged = sha256_file(artifacts / "engine" / manifest.MANIFEST)
    mlflow_runs.client(uri).set_model_version_tag("tiny", "1", mlflow_tags.manifest_sha256("build"), "2" * 64)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert main(["pull", "tiny/1", "--to", str(tmp_path / "pulled")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: tiny version 1: its {mlflow_tags.manifest_sha256('build')} tag records MANIFEST.json sha256 {'2' * 64}, "
        f"the run that logged runs:/{run_id}/engine {logged}; nothing was pulled"]
    assert not (tmp_path / "pulled").exists()


def test_a_rewritten_manifest_whose_digest_was_copied_to_the_version_tag_is_refused(registered, tmp_path):
    """One who can write the artifacts and the version's tags (not the logging run's tag nor the lock file)."""
    uri, artifacts, _ = registered
    path = artifacts / "engine" / manifest.MANIFEST
    rewritten = json.loads(path.read_text())
    rewritten["files"]["config.json"]["size"] += 1
    manifest.write(rewritten, path.parent)
    mlflow_runs.client(uri).set_model_version_tag("tiny", "1", mlflow_tags.manifest_sha256("build"), sha256_file(path))
    with pytest.raises(transfer.ArtifactMismatch, match="^tiny version 1: its engineforge.manifest_sha256.build tag records"):
        pull(uri, "tiny/1", tmp_path / "pulled")
    assert not (tmp_path / "pulled").exists()


def test_a_version_registered_without_the_tag_gets_it_when_its_recipe_runs_again(registered, tmp_path):
    uri, artifacts, run_id = registered
    tag = mlflow_tags.manifest_sha256("build")
    mlflow_runs.client(uri).delete_model_version_tag("tiny", "1", tag)
    with pytest.raises(UserError, match=f"^tiny version 1 carries no {tag} tag .*run its recipe again"):
        pull(uri, "tiny/1", tmp_path / "pulled")
    digest, source = sha256_file(artifacts / "engine" / manifest.MANIFEST), f"runs:/{run_id}/engine"
    assert TrackedRun(uri, run_id).register_version("tiny", source, KEY, {tag: digest}) == ("1", True)  # reused
    assert version_tag(uri) == digest and str(pull(uri, "tiny/1", tmp_path / "pulled").version) == "1"
    TrackedRun(uri, run_id).register_version("tiny", source, KEY, {tag: "4" * 64})
    assert version_tag(uri) == digest  # a recorded tag is never rewritten
