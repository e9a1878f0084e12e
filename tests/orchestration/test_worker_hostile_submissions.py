"""What a submitter can choose, tried against a real `engineforge worker` process (issue 26): flow runs
created from the deployment through the Prefect API, as any API client can (`engineforge submit` itself
refuses these parameters before it sends anything). The worker's own settings decide its paths; a
refused recipe ends Failed with its one-line reason; SIGTERM stops the worker and the flow run it is running
within 10 s, the run recorded CRASHED in Prefect and KILLED in MLflow, none of its processes left."""

from __future__ import annotations

import signal
import subprocess
import time

import psutil
import pytest
from prefect_services import mlflow_run_of, read_flow_run, tiny_recipe

pytestmark = pytest.mark.integration

DEPLOYMENT = "model-to-deployment/model-to-deployment"
FINAL_TIMEOUT_S = 300


def _create_run(parameters: dict) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(DEPLOYMENT)
        return str(client.create_flow_run_from_deployment(deployment.id, parameters=parameters).id)


def _final(flow_run_id: str):
    deadline = time.monotonic() + FINAL_TIMEOUT_S
    while True:
        run = read_flow_run(flow_run_id)
        if run.state and run.state.is_final():
            return run.state
        assert time.monotonic() < deadline, f"flow run {flow_run_id} still {run.state} after {FINAL_TIMEOUT_S} s"
        time.sleep(1)


def test_a_real_worker_refuses_submitted_paths_and_bad_recipes_then_stops_on_sigterm(deployments, workers, tmp_path):
    worker = workers.start("hostile-target", gpus=1)
    elsewhere = tmp_path / "elsewhere"
    with deployments.client_settings():
        path_run = _create_run({"recipe_yaml": tiny_recipe("hostile-store", seed=26), "store_root": str(elsewhere)})
        bad_run = _create_run({"recipe_yaml": "name: Bad Name\nmodel:\n  source: synthetic:tiny\n"})
        path_state, bad_state = _final(path_run), _final(bad_run)

    assert path_state.is_failed() and not path_state.is_crashed(), path_state
    assert f"store_root {elsewhere}: a submitted run uses this worker's store" in path_state.message
    assert not elsewhere.exists()  # nothing written (or removed) where the submitter pointed
    assert bad_state.is_failed() and not bad_state.is_crashed(), bad_state
    assert "<recipe>:1: name:" in bad_state.message and "\n" not in bad_state.message.strip(), bad_state.message

    # SIGTERM while a flow run is running, as a service manager or `docker stop` sends it.
    with deployments.client_settings():
        busy_run = _create_run({"recipe_yaml": tiny_recipe("hostile-busy", seed=27, max_tokens=64)})
        _wait_for(lambda: read_flow_run(busy_run).state.is_running())
        _wait_for(lambda: _runs_a_model_server(worker))  # into its validate stage
        started_processes = psutil.Process(worker.process.pid).children(recursive=True)
        started = time.monotonic()
        worker.process.send_signal(signal.SIGTERM)
        try:
            worker.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"engineforge worker still running 10 s after SIGTERM:\n{worker.output()[-2000:]}")
        stopped_s = time.monotonic() - started
        state = read_flow_run(busy_run).state

    assert state.is_crashed(), state  # not left RUNNING with nobody running it
    assert "of a dead process" in state.message, state.message
    assert not [p.cmdline() for p in started_processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    mlflow_run = mlflow_run_of(workers.stores["MLFLOW_TRACKING_URI"], busy_run)
    assert mlflow_run.info.status == "KILLED", mlflow_run.info.status
    print(f"worker and its flow run stopped {stopped_s:.1f} s after SIGTERM:",
          *[line for line in worker.output().splitlines() if line.startswith("engineforge worker:")], sep="\n")


def _runs_a_model_server(worker) -> bool:
    return any("serve" in " ".join(p.cmdline()) for p in psutil.Process(worker.process.pid).children(recursive=True)
               if p.is_running())


def _wait_for(condition, timeout_s: float = FINAL_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.2)
