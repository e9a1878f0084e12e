"""The Prefect API dies mid-run, for real: `engineforge run` starts its background `prefect server`, the
test kills that server (SIGKILL of its process group) while validate runs; the stages and the MLflow
run complete, and the run exits 0 with its summary and one line saying the API went away, no
traceback (it was exit 1 and a traceback for a run MLflow recorded FINISHED), without waiting a minute of
Prefect's client retries on an API that is gone.
Real Prefect server, real MLflow (SQLite), real `transformers serve` on the tiny synthetic model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from mlflow.tracking import MlflowClient
from prefect_services import tiny_recipe

pytestmark = pytest.mark.integration
ENGINEFORGE = str(Path(sys.executable).parent / "engineforge")


def test_the_prefect_api_dying_mid_run_leaves_the_runs_real_outcome_and_one_line(tmp_path):
    recipe = tmp_path / "api-lost.yaml"
    recipe.write_text(tiny_recipe("api-lost", seed=1516))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    state = tmp_path / "prefect"
    env = {name: value for name, value in os.environ.items() if not name.startswith("PREFECT_")}
    env.update(ENGINEFORGE_PREFECT_HOME=str(state), PREFECT_HOME=str(tmp_path / "prefect-home"),
               MLFLOW_TRACKING_URI=uri, DOCKER_HOST=f"unix://{tmp_path / 'none.sock'}", HF_HUB_OFFLINE="1")
    run = subprocess.Popen([ENGINEFORGE, "run", str(recipe), "--store", str(tmp_path / "store")], cwd=tmp_path,
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 500
        while not _model_server(run.pid):  # validate under way: the background Prefect server has long answered
            assert run.poll() is None, run.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "validate never started its server"
            time.sleep(0.2)
        server = json.loads((state / "server.json").read_text())["pid"]
        os.killpg(server, signal.SIGKILL)
        killed = time.monotonic()
        stdout, stderr = run.communicate(timeout=600)
        ended = time.time()
    finally:
        if run.poll() is None:
            run.kill()
        _stop_servers_of(state)  # however the test ended, its background Prefect server goes with it
    print(f"Prefect API killed during validate; the run ended {time.monotonic() - killed:.1f} s later, exit "
          f"{run.returncode}\nstderr:\n{stderr}")
    assert run.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert "Traceback" not in stdout + stderr
    assert [line for line in stderr.splitlines() if line.strip()] == [
        f"warning: the Prefect API ({_api_url(state)}) went away during the run: its flow run was not updated; "
        "the stages and the MLflow run above are the run's record"], stderr  # that one line, nothing of Prefect's
    assert "api-lost: completed" in stdout
    mlflow = MlflowClient(uri)
    (recorded,) = mlflow.search_runs([e.experiment_id for e in mlflow.search_experiments()])
    assert recorded.info.status == "FINISHED" and recorded.data.tags["engineforge.stage.validate.status"] == "ran"
    lingered = ended - recorded.info.end_time / 1000
    print(f"the run exited {lingered:.1f} s after its MLflow run ended")
    # Not a speed target: Prefect's client retrying the final state alone backs off 2+4+8+16+32 s.
    assert lingered < 30, "the run waited on the dead API's retries before exiting"


def _model_server(pid: int) -> bool:
    """A `transformers serve` under the run (its background `prefect server` is a child too)."""
    try:
        commands = [p.cmdline() for p in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return False
    return any("serve" in argv and any(Path(arg).name == "transformers" for arg in argv) for argv in commands)


def _api_url(state: Path) -> str:
    return json.loads((state / "server.json").read_text())["url"]


def _stop_servers_of(state: Path) -> None:
    for process in psutil.process_iter(["environ"]):
        if (process.info["environ"] or {}).get("PREFECT_HOME") == str(state):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
