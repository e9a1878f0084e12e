"""The default recipe as a deployment on a Docker work pool, for real: `engineforge worker --type docker`
(prefect-docker) runs the flow run in engineforge's CPU worker image on the local dockerd, against the
session's real prefect server. MLflow (SQLite) and the store live in a directory bind-mounted at the
same path; the Prefect API on loopback puts the container on the host network. Nothing is faked; the
GPU device request of prefect.yaml's docker block is left out (no GPU here: see
tests/orchestration/test_docker_job_template.py). Skips only where no Docker daemon answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from prefect_services import BIN, Workers, mlflow_run_of, read_flow_run, stage_statuses, submit

REPO = Path(__file__).resolve().parents[2]
POOL = "docker-cpu-test"
DEPLOYMENT = "docker-cpu"
HOSTNAME = "engineforge-docker-flow-run"  # the container's; with the host network it would be the host's


def deploy_file(path: Path, shared: Path, store: Path) -> Path:
    """prefect.yaml's pull step and docker job variables, for one deployment on POOL with the test's paths."""
    project = yaml.safe_load((REPO / "prefect.yaml").read_text())
    variables = project["definitions"]["job_variables"]["docker"]
    variables["env"] |= {"ENGINEFORGE_STORE": str(store), "HF_HUB_OFFLINE": "1"}
    variables |= {"volumes": [f"{shared}:{shared}"], "image_pull_policy": "Never",
                  "container_create_kwargs": {"hostname": HOSTNAME}}
    path.write_text(yaml.safe_dump({
        "name": project["name"], "prefect-version": project["prefect-version"], "pull": project["pull"],
        "deployments": [{"name": DEPLOYMENT, "entrypoint": "flows/model_to_deployment.py:model_to_deployment",
                         "work_pool": {"name": POOL, "work_queue_name": "default", "job_variables": variables}}],
    }))
    return path


@pytest.mark.integration
@pytest.mark.timeout(2700)  # a cold worker image build included (16 min on the 2-core VM)
def test_the_default_recipe_runs_as_a_deployment_in_a_worker_image_container_and_its_results_land(
        docker_client, worker_image, prefect_server, worker_stores, tmp_path):
    from engineforge.packaging.daemon import daemon_address
    from engineforge.processes.owner import boot_id
    from engineforge.artifacts.store import Store
    from engineforge.tracking.mlflow_runs import CANDIDATE_ALIAS, client

    shared = tmp_path / "shared"
    shared.mkdir()
    uri, store = f"sqlite:///{shared / 'mlflow.db'}", shared / "store"
    workers = Workers(prefect_server, worker_stores)
    try:
        workers.start("docker-worker", 0, "--type", "docker", pool=POOL, DOCKER_HOST=daemon_address())
        deployed = prefect_server.run(
            [str(BIN / "prefect"), "--no-prompt", "deploy", "--prefect-file", str(deploy_file(tmp_path / "prefect.yaml", shared, store)),
             "--name", DEPLOYMENT], ENGINEFORGE_IMAGE=worker_image, MLFLOW_TRACKING_URI=uri, ENGINEFORGE_GPU_LIMIT="gpu-docker-test")
        assert deployed.returncode == 0, f"{deployed.stdout[-3000:]}\n{deployed.stderr[-3000:]}"
        done = submit(prefect_server, [REPO / "recipes" / "tiny-llama.yaml"], "--deployment",
                      f"model-to-deployment/{DEPLOYMENT}", "--watch", "--json", timeout=2100)
    finally:
        workers.stop_all()
    log = workers.started[0].output()[-4000:]
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}\nworker:\n{log}"
    (submitted,) = json.loads(done.stdout)
    flow_run_id = submitted["flow_run_id"]
    with prefect_server.client_settings():
        assert read_flow_run(flow_run_id).state.is_completed()

    (container,) = docker_client.containers.list(all=True, filters={"label": f"io.prefect.flow-run-id={flow_run_id}"})
    try:
        assert container.image.id == docker_client.images.get(worker_image).id
        assert container.attrs["State"]["ExitCode"] == 0
        assert container.attrs["HostConfig"]["NetworkMode"] == "host"
        assert container.attrs["Config"]["Hostname"] == HOSTNAME
        run = mlflow_run_of(uri, flow_run_id)
        assert run.info.status == "FINISHED"
        tags = run.data.tags
        # The run's owner is the container's process: its hostname, and a pid namespace other than ours.
        assert tags["engineforge.owner.host"] == HOSTNAME
        assert tags["engineforge.owner.boot_id"].partition("-")[2] not in ("", boot_id().partition("-")[2])
        assert stage_statuses(run) == {"download": "ran", "shard": "skipped", "build": "ran", "validate": "ran",
                                       "package": "skipped", "register": "ran"}  # no Docker socket in the container
        assert run.data.metrics["output_tokens_per_s"] > 0
        for stage in ("download", "build", "validate"):
            manifest = Store(store).manifest(stage, tags[f"engineforge.stage.{stage}.key"])
            assert manifest is not None, f"{stage} entry missing from the bind-mounted store {store}"
        version = client(uri).get_model_version_by_alias("tiny-llama", CANDIDATE_ALIAS)
        assert version.run_id == run.info.run_id and str(store) in version.source  # by reference: the store is shared
    finally:
        container.remove(force=True)
