"""`kill -9` of `engineforge run` during validate, for real: the run's `transformers serve` dies with it;
`engineforge doctor` closes the MLflow run (KILLED) and the Prefect flow run (CRASHED) it left RUNNING
and removes its temporary store directory; the next run reuses what was built and completes.
A real Prefect server, real MLflow (SQLite), a real `transformers serve` on the tiny synthetic model."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from mlflow.tracking import MlflowClient
from prefect_services import read_flow_run, tiny_recipe

from engineforge.tracking.mlflow_tags import FLOW_RUN_TAG

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
ENGINEFORGE = str(Path(sys.executable).parent / "engineforge")


def serve_processes(pid: int) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if "serve" in " ".join(p.cmdline())]
    except psutil.NoSuchProcess:
        return []


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_sigkill_during_validate_leaves_nothing_running_and_doctor_closes_the_records(tmp_path, prefect_server):
    recipe = tmp_path / "killed.yaml"
    recipe.write_text(tiny_recipe("killed-run", seed=1515))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store = tmp_path / "store"
    env = prefect_server.env("killed-run", MLFLOW_TRACKING_URI=uri, DOCKER_HOST=f"unix://{tmp_path / 'none.sock'}",
                             HF_HUB_OFFLINE="1")
    argv = [ENGINEFORGE, "run", str(recipe), "--store", str(store)]
    run = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 400
    while not serve_processes(run.pid):
        assert run.poll() is None, run.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "validate never started its server"
        time.sleep(0.2)
    time.sleep(2)  # the server is loading the model or serving: validate is under way
    group = alive(psutil.Process(run.pid).children(recursive=True))
    run.send_signal(signal.SIGKILL)
    run.wait()
    killed = time.monotonic()
    while alive(group):
        assert time.monotonic() - killed < 30, f"left running: {[p.cmdline() for p in alive(group)]}"
        time.sleep(0.05)
    print(f"kill -9 during validate: every child gone {time.monotonic() - killed:.2f} s after the kill")

    mlflow = MlflowClient(uri)
    (left,) = mlflow.search_runs([e.experiment_id for e in mlflow.search_experiments()])
    assert left.info.status == "RUNNING"
    flow_run_id = left.data.tags[FLOW_RUN_TAG]
    assert read_flow_run_state(prefect_server, flow_run_id) == "RUNNING"
    assert list((store / "validate").glob(".tmp-*"))

    started = time.monotonic()
    doctor = subprocess.run([ENGINEFORGE, "doctor", "--store", str(store)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    print(f"engineforge doctor closed the records in {time.monotonic() - started:.1f} s:\n{doctor.stdout}")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert mlflow.get_run(left.info.run_id).info.status == "KILLED"
    assert read_flow_run_state(prefect_server, flow_run_id) == "CRASHED"
    assert not list((store / "validate").glob(".tmp-*"))

    started = time.monotonic()
    rerun = subprocess.run([*argv, "--json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    statuses = {stage["stage"]: stage["status"] for stage in json.loads(rerun.stdout)["stages"]}
    print(f"the next run completed in {time.monotonic() - started:.1f} s: {statuses}")
    assert statuses["download"] == "cached" and statuses["validate"] == "ran"


def read_flow_run_state(server, flow_run_id: str) -> str:
    with server.client_settings():
        return read_flow_run(flow_run_id).state.type.value
