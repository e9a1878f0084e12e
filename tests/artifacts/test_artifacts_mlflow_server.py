"""Engines as MLflow artifacts through a real `mlflow server` with proxied artifacts (no shared disk):
upload and verified download, a byte changed on the server never served, and two process workers
with separate stores that compute each stage once between them (the public hub and TensorRT-LLM are
not needed: the tiny synthetic Llama on the transformers runtime)."""

import json
import os
import subprocess
from pathlib import Path

import psutil
import pytest
from prefect_services import BIN, REPO, Workers, mlflow_run_of, stage_statuses, submit, tiny_recipe

from engineforge.processes import local_service
from engineforge.tracking import mlflow_runs
from engineforge.artifacts import manifest, server, transfer
from engineforge.processes.serving import free_port

pytestmark = pytest.mark.integration
SECRETS = {"HF_TOKEN": "hf_secret", "REGISTRY_PASSWORD": "hunter2"}


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """`engineforge tracking start`'s server, on its own port and state directory, started by a
    caller whose environment holds secrets (the server must not inherit them)."""
    directory = tmp_path_factory.mktemp("tracking")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in SECRETS.items():
            patch.setenv(name, value)
        url = server.start(free_port(), directory=directory)
    yield url, directory / "artifacts"
    server.stop(directory)


def test_the_tracking_server_and_its_workers_hold_no_secrets(mlflow_server):
    """Real /proc environments of `mlflow server` and the uvicorn/gunicorn processes it starts."""
    url, artifacts = mlflow_server
    record = local_service.read_record(artifacts.parent)
    top = psutil.Process(record["pid"])
    processes = [top, *top.children(recursive=True)]
    assert len(processes) >= 2  # the server and at least one worker
    leaked = {(process.pid, name) for process in processes for name in process.environ() if name in SECRETS}
    assert not leaked, leaked


def a_run(uri: str, experiment: str) -> str:
    client = mlflow_runs.client(uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    return client.create_run(experiment_id).info.run_id


def server_file(artifacts: Path, run_id: str, name: str) -> Path:
    (found,) = artifacts.glob(f"*/{run_id}/artifacts/{name}")
    return found


def flip_one_byte(path: Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def same_files(a: Path, b: Path, skip: tuple[str, ...] = ()) -> bool:
    names = lambda root: {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - set(skip)
    return names(a) == names(b) and all((a / n).read_bytes() == (b / n).read_bytes() for n in names(a))


def test_a_directory_goes_up_file_by_file_and_comes_back_verified_and_a_changed_byte_is_never_served(mlflow_server, tmp_path):
    uri, artifacts = mlflow_server
    run_id = a_run(uri, "artifact-transfer")
    source = tmp_path / "entry"
    (source / "served" / "nested").mkdir(parents=True)
    (source / "served" / "weights.bin").write_bytes(os.urandom(3 << 20))
    (source / "served" / "nested" / "config.json").write_text('{"a": 1}\n')

    location = transfer.upload(mlflow_runs.TrackedRun(uri, run_id), source, "engine", "build", "k" * 64)
    pulled = transfer.download(uri, location, tmp_path / "pulled", "k" * 64)

    assert location == f"runs:/{run_id}/engine"
    assert same_files(source, pulled, skip=(manifest.MANIFEST,))
    logged = json.loads(server_file(artifacts, run_id, f"engine/{manifest.MANIFEST}").read_text())
    assert logged["files"]["served/weights.bin"]["size"] == 3 << 20 and logged["key"] == "k" * 64

    flip_one_byte(server_file(artifacts, run_id, "engine/served/weights.bin"))  # on the server's disk
    with pytest.raises(transfer.ArtifactMismatch, match="served/weights.bin: sha256 differs"):
        transfer.download(uri, location, tmp_path / "corrupt", "k" * 64)
    assert list((tmp_path / "corrupt").iterdir()) == []  # nothing served, no partial download left beside it
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".partial")] == []

    with open(server_file(artifacts, run_id, "engine/served/weights.bin"), "r+b") as handle:
        handle.truncate(1 << 20)
    with pytest.raises(transfer.ArtifactMismatch, match=f"{1 << 20} bytes"):
        transfer.download(uri, location, tmp_path / "truncated")


def test_the_remote_tier_commits_a_verified_entry_and_never_a_corrupted_one(mlflow_server, tmp_path):
    from engineforge.artifacts.remote_tier import RemoteTier
    from engineforge.artifacts.store import Store, file_records, write_manifest

    uri, artifacts = mlflow_server
    key, host_a = "b" * 64, Store(tmp_path / "a")
    with host_a.writing("build", key) as workdir:
        (workdir / "served").mkdir()
        (workdir / "served" / "weights.bin").write_bytes(os.urandom(1 << 20))
        write_manifest(workdir, {"stage": "build", "key": key, "summary": "built", "outputs": {"served_dir": "served"},
                                 "skipped": False, "files": file_records(workdir)})
    logger = a_run(uri, "remote-tier")
    assert RemoteTier(mlflow_runs.TrackedRun(uri, logger)).upload(host_a, "build", key) == f"runs:/{logger}/engine"
    asker = a_run(uri, "remote-tier")  # another run of the experiment, on a host with an empty store

    host_b = Store(tmp_path / "b")
    fetched = RemoteTier(mlflow_runs.TrackedRun(uri, asker)).fetch(host_b, "build", key)
    assert fetched["outputs"] == {"served_dir": "served"} and host_b.problems("build", key, full=True) == []

    flip_one_byte(server_file(artifacts, logger, "engine/served/weights.bin"))
    host_c = Store(tmp_path / "c")
    assert RemoteTier(mlflow_runs.TrackedRun(uri, asker)).fetch(host_c, "build", key) is None  # computed there instead
    assert not host_c.entry("build", key).exists()


RECIPE = "tiny-llama"


def test_two_workers_with_separate_stores_compute_each_stage_once_and_pull_gets_the_same_bytes(
        mlflow_server, deployments, worker_stores, tmp_path):
    uri, artifacts = mlflow_server
    recipe = tmp_path / "tiny-llama.yaml"
    recipe.write_text(tiny_recipe(RECIPE, seed=16))
    stores = {name: tmp_path / f"store-{name}" for name in ("a", "b")}
    runs = {}
    for name in ("a", "b"):  # one worker at a time, so each submission lands on the one named
        workers = Workers(deployments, worker_stores)
        workers.start(f"artifacts-{name}", ENGINEFORGE_STORE=str(stores[name]), MLFLOW_TRACKING_URI=uri)
        try:
            done = submit(deployments, [recipe], "--watch", "--json")
        finally:
            workers.stop_all()
        assert done.returncode == 0, f"worker {name}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        (runs[name],) = json.loads(done.stdout)

    first, second = (mlflow_run_of(uri, runs[name]["flow_run_id"]) for name in ("a", "b"))
    assert stage_statuses(first) == {"download": "ran", "shard": "skipped", "build": "ran", "validate": "ran",
                                     "package": "skipped", "register": "ran"}
    assert stage_statuses(second) == {"download": "fetched", "shard": "skipped", "build": "fetched",
                                      "validate": "fetched", "package": "skipped", "register": "cached"}
    assert first.data.metrics["output_tokens_per_s"] > 0  # measured once; the fetched figures point at that run
    assert "output_tokens_per_s" not in second.data.metrics
    assert second.data.tags["engineforge.measured_by_run"] == first.info.run_id
    build_key = first.data.tags["engineforge.stage.build.key"]
    entries = {name: stores[name] / "build" / build_key for name in ("a", "b")}
    assert same_files(entries["a"], entries["b"], skip=(manifest.MANIFEST, "manifest.json"))

    version = mlflow_runs.client(uri).get_model_version_by_alias(RECIPE, mlflow_runs.CANDIDATE_ALIAS)
    assert version.source == f"runs:/{first.info.run_id}/engine" and not version.source.startswith("file:")

    pulled = tmp_path / "third" / "engine"
    pull = subprocess.run([str(BIN / "engineforge"), "pull", f"{RECIPE}@candidate", "--to", str(pulled)],
                          cwd=tmp_path, env={**os.environ, "MLFLOW_TRACKING_URI": uri}, capture_output=True, text=True)
    assert pull.returncode == 0, pull.stderr
    assert f"version {version.version}" in pull.stdout and "verified" in pull.stdout
    assert same_files(entries["a"], pulled, skip=(manifest.MANIFEST,))

    weights = next(server_file(artifacts, first.info.run_id, "engine").rglob("*.safetensors"))
    flip_one_byte(weights)
    corrupt = subprocess.run([str(BIN / "engineforge"), "pull", f"{RECIPE}/{version.version}", "--to",
                              str(tmp_path / "corrupt")], cwd=REPO, env={**os.environ, "MLFLOW_TRACKING_URI": uri},
                             capture_output=True, text=True)
    assert corrupt.returncode == 2 and corrupt.stderr.count("\n") == 1
    assert "sha256 differs from MANIFEST.json" in corrupt.stderr and "nothing was kept" in corrupt.stderr
    assert not any(p.is_file() for p in (tmp_path / "corrupt").rglob("*"))


def test_a_failed_engine_upload_injected_fails_the_run_and_registers_nothing(
        mlflow_server, prefect_api, monkeypatch, no_docker, tmp_path):
    from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository

    from engineforge.errors import StageFailed
    from flows.model_to_deployment import model_to_deployment

    uri, _ = mlflow_server
    real_log_artifact = HttpArtifactRepository.log_artifact

    def dropped_connection(self, local_file, artifact_path=None):  # the injected fault: the server goes away
        if (artifact_path or "").startswith("engine"):
            raise ConnectionError("connection reset by peer")
        return real_log_artifact(self, local_file, artifact_path)

    monkeypatch.setattr(HttpArtifactRepository, "log_artifact", dropped_connection)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(StageFailed) as failure:
        model_to_deployment(recipe_yaml=tiny_recipe("upload-fails", seed=161), store_root=str(tmp_path / "store"))

    assert failure.value.stage == "build" and "connection reset by peer" in failure.value.cause
    client = mlflow_runs.client(uri)
    run = client.get_run(failure.value.summary["mlflow"]["run_id"])
    assert run.info.status == "FAILED" and "engineforge.logged.build" not in run.data.tags
    assert run.data.tags["engineforge.logged.download"]  # what was logged before the failure stays
    assert client.search_model_versions("name = 'upload-fails'") == []
