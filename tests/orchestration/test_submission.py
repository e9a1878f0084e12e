"""`engineforge submit --watch` against a real Prefect server: deployed from prefect.yaml, run by a
real process worker on the `gpu` pool, recorded in MLflow; a second worker process reuses it all."""

import json
import subprocess
from pathlib import Path

import pytest
from prefect_services import (
    BIN,
    RECIPE_ON_WORKER_A,
    REPO,
    deployment_flow_runs,
    flow_run_artifacts,
    mlflow_run_of,
    stage_statuses,
    submit,
    task_runs,
    tiny_recipe,
)

from engineforge.recipe_checks import check_recipes

pytestmark = pytest.mark.integration

RECIPE_NAME = RECIPE_ON_WORKER_A


@pytest.fixture(scope="module")
def tiny(worker_a_runs) -> Path:
    return worker_a_runs.recipes[0]


@pytest.fixture(scope="module")
def first_run(worker_a_runs):
    """The tiny recipe submitted with --watch and run by worker A (stopped afterwards), beside the GPU-slot
    test's four runs (tests/prefect_services.py `worker_a_runs`): (its submission, worker A)."""
    done = worker_a_runs.done
    if done.returncode == 0:  # its own entry of the submission's JSON list (`watched` expects one)
        done = subprocess.CompletedProcess(done.args, 0, json.dumps(
            [run for run in json.loads(done.stdout) if run["name"] == RECIPE_NAME]), done.stderr)
    return done, worker_a_runs.worker


def watched(done) -> dict:
    assert done.returncode == 0, f"submit failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    (run,) = json.loads(done.stdout)
    return run


def test_prefect_yaml_deploys_the_submission_schedules_and_watcher(deployments):
    from prefect.client.orchestration import get_client

    with deployments.client_settings(), get_client(sync_client=True) as client:
        main = client.read_deployment_by_name("model-to-deployment/model-to-deployment")
        examples = client.read_deployment_by_name("scheduled-recipe/example-recipes")
        watcher = client.read_deployment_by_name("watch-revisions/watch-revisions")

    assert main.work_pool_name == "gpu" and main.parameter_openapi_schema["required"] == ["recipe_yaml"]
    pull = main.pull_steps[0]["prefect.deployments.steps.set_working_directory"]
    assert pull["directory"] == "{{ $ENGINEFORGE_CHECKOUT }}"  # resolved on the worker, from its clone
    assert len(examples.schedules) >= 1
    for schedule in examples.schedules:
        assert schedule.schedule.cron and schedule.schedule.timezone and schedule.parameters["recipe"]
        loaded, problems = check_recipes([REPO / schedule.parameters["recipe"]])
        assert problems == [] and loaded
    assert watcher.schedules and watcher.schedules[0].parameters["recipes"]
    assert watcher.global_concurrency_limit.limit == 1  # two watcher runs never race


def test_submit_reports_recipe_errors_exactly_as_validate_and_sends_nothing(deployments, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(tiny_recipe("bad-recipe").replace("requests: 2", "requests: many"))
    validated = deployments.run([str(BIN / "engineforge"), "validate", str(bad)])
    with deployments.client_settings():
        before = len(deployment_flow_runs("model-to-deployment/model-to-deployment"))
        submitted = submit(deployments, [bad], "--watch")
        after = len(deployment_flow_runs("model-to-deployment/model-to-deployment"))

    assert validated.returncode == submitted.returncode == 2
    assert submitted.stderr == validated.stderr and "validate.requests: must be an integer" in submitted.stderr
    assert after == before


def test_submit_watch_completes_on_the_worker_with_its_mlflow_run(deployments, worker_stores, first_run):
    done, worker = first_run
    run = watched(done)

    assert run["state"] == "Completed"
    assert f"flow run {run['flow_run_id']}" in done.stderr and run["url"].endswith(run["flow_run_id"])
    assert run["flow_run_id"] in worker.output()  # the worker process ran it
    assert f"# {RECIPE_NAME}: completed" in run["summary"] and "| validate | ran |" in run["summary"]
    mlflow_run = mlflow_run_of(worker_stores["MLFLOW_TRACKING_URI"], run["flow_run_id"])
    # Runs are named recipe + short key (issue 17), so a user tells them apart in the UI.
    assert mlflow_run.info.status == "FINISHED" and mlflow_run.info.run_name.startswith(f"{RECIPE_NAME}-")
    assert mlflow_run.data.metrics["output_tokens_per_s"] > 0
    assert stage_statuses(mlflow_run) == {"download": "ran", "shard": "skipped", "build": "ran", "validate": "ran",
                                          "package": "skipped", "register": "ran"}
    with deployments.client_settings():
        artifacts = flow_run_artifacts(run["flow_run_id"])
    kinds = {(artifact.type, artifact.key) for artifact in artifacts}
    assert {("markdown", f"{RECIPE_NAME}-summary"), ("table", f"{RECIPE_NAME}-validation")} <= kinds
    progress = [artifact for artifact in artifacts if artifact.type == "progress"]
    assert {artifact.description.split()[0] for artifact in progress} == {"download", "build"}
    assert all(float(artifact.data) == 100 for artifact in progress)


def test_second_submission_from_another_worker_process_reuses_every_stage(deployments, worker_stores, first_run, tiny, workers):
    first = watched(first_run[0])
    worker_b = workers.start("worker-b")

    second = watched(submit(deployments, [tiny], "--watch", "--json"))

    assert second["state"] == "Completed" and second["flow_run_id"] in worker_b.output()
    uri = worker_stores["MLFLOW_TRACKING_URI"]
    before, after = mlflow_run_of(uri, first["flow_run_id"]), mlflow_run_of(uri, second["flow_run_id"])
    assert stage_statuses(after) == {"download": "cached", "shard": "skipped", "build": "cached",
                                     "validate": "cached", "package": "skipped", "register": "cached"}
    keys = {key: value for key, value in after.data.tags.items() if key.endswith(".key")}
    assert keys and keys == {key: value for key, value in before.data.tags.items() if key.endswith(".key")}
    # A fully cached rerun measured nothing: it logs no figures again and points at the run that measured them.
    assert "output_tokens_per_s" not in after.data.metrics
    assert after.data.tags["engineforge.measured_by_run"] == before.info.run_id
    with deployments.client_settings():  # reused from the store: the UI shows the task runs as cached
        cached = [task_runs([second["flow_run_id"]], stage, expected=1)[0] for stage in ("build", "validate")]
    assert [run.state.name for run in cached] == ["Cached", "Cached"]

    refreshed = watched(submit(deployments, [tiny], "--watch", "--json", "--refresh", "validate"))

    statuses = stage_statuses(mlflow_run_of(uri, refreshed["flow_run_id"]))
    assert (statuses["build"], statuses["validate"]) == ("cached", "ran")
    with deployments.client_settings():
        (validate,) = task_runs([refreshed["flow_run_id"]], "validate", expected=1)
    assert validate.state.name == "Completed"
