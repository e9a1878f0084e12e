"""A run killed with SIGKILL leaves its MLflow run RUNNING; what the next run on the host calls first
(engineforge.tracking.mlflow_runs.close_stale_runs, also in `engineforge doctor`'s close_stale) closes it as
KILLED. Real processes, a real SQLite MLflow store; tests/reliability/test_killed_run.py does it end to end with
`engineforge run`."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

from mlflow.tracking import MlflowClient

from engineforge.tracking import mlflow_runs, mlflow_tags
from engineforge.orchestration.stale_runs import close_stale
from engineforge.processes.owner import Owner
from engineforge.recipe.file import parse_recipe

RECIPE = "name: stale-demo\nmodel:\n  source: synthetic:tiny-llama\nruntime: transformers\n"

STARTS_A_RUN_AND_HANGS = textwrap.dedent("""
    import os, sys, time
    from engineforge.tracking import mlflow_runs
    from engineforge.recipe.file import parse_recipe
    os.environ["MLFLOW_TRACKING_URI"] = sys.argv[1]
    print(mlflow_runs.start_run(parse_recipe(sys.argv[2]), sys.argv[2]).run_id, flush=True)
    time.sleep(300)
""")


def test_a_killed_runs_mlflow_run_is_closed_as_killed_before_the_next_run_starts(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    owner = subprocess.Popen([sys.executable, "-c", STARTS_A_RUN_AND_HANGS, uri, RECIPE], stdout=subprocess.PIPE, text=True)
    killed_run = owner.stdout.readline().strip()
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    mlflow_client = MlflowClient(uri)
    assert mlflow_client.get_run(killed_run).info.status == "RUNNING"

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    started = time.perf_counter()
    assert len(close_stale(uri, prefect=False)) == 1  # no Prefect API here: the MLflow side
    print(f"stale run closed in {time.perf_counter() - started:.2f} s")
    new_run = mlflow_runs.start_run(parse_recipe(RECIPE), RECIPE).run_id
    assert close_stale(uri, prefect=False) == []
    closed = mlflow_client.get_run(killed_run)
    assert closed.info.status == "KILLED"
    assert "is dead" in closed.data.tags[mlflow_tags.CLOSED_BY_TAG]
    assert mlflow_client.get_run(new_run).info.status == "RUNNING"  # a live owner's run is left alone


def test_runs_of_live_owners_and_other_hosts_are_left_running(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow_client = mlflow_runs.client(uri)
    experiment = mlflow_client.create_experiment("e")
    me = Owner.current()
    elsewhere = Owner("another-host", me.boot_id, 1, 0)
    live = mlflow_client.create_run(experiment, tags=mlflow_runs.owner_tags(me)).info.run_id
    remote = mlflow_client.create_run(experiment, tags=mlflow_runs.owner_tags(elsewhere)).info.run_id
    dead = mlflow_client.create_run(experiment, tags=mlflow_runs.owner_tags(Owner(me.host, "0" * 16, me.pid, me.started))).info.run_id
    (closed,) = mlflow_runs.close_stale_runs(uri)
    assert closed.startswith(f"MLflow run {dead} ") and closed.endswith("of a dead process: KILLED")
    assert [mlflow_client.get_run(run).info.status for run in (live, remote, dead)] == ["RUNNING", "RUNNING", "KILLED"]
