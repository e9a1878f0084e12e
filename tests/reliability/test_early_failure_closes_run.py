"""A run that fails once its MLflow run exists but before its first stage, for real: `engineforge run`
with its MLflow artifacts (`mlartifacts`, beside a SQLite database whose own disk has room) on a tmpfs
filled before the run starts. With the tmpfs full, the run's first artifact (recipe.yaml, written by
`mlflow_runs.start_run`) fails; with one page left, recipe.yaml takes it and the flow's plan.json fails.
Either way the user gets the same one line as before (the full place, its free space, exit 1, no
traceback), and the MLflow run is closed FAILED with the error in its `engineforge.failed_because` tag
(before: left RUNNING until the next run's cleanup). A real Prefect server, real MLflow; mounting needs root."""

from __future__ import annotations

import os
import subprocess

import pytest
from mlflow.tracking import MlflowClient
from prefect_services import tiny_recipe

from engineforge.tracking import mlflow_runs
from engineforge.tracking.mlflow_tags import FAILED_BECAUSE_TAG
from tests.reliability.test_disk_full_mid_run import ENGINEFORGE, fill, full_line, mounted_tmpfs, mounts  # noqa: F401

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("pages_left, written", [(0, []), (1, ["recipe.yaml"])], ids=["recipe.yaml", "plan.json"])
def test_a_failure_before_the_first_stage_closes_the_mlflow_run_failed_with_the_same_one_line(
        tmp_path, prefect_server, mounts, pages_left, written):
    mounts.append(full := mounted_tmpfs(tmp_path / "mlartifacts"))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow_runs.client(uri).search_experiments()  # the database exists, on a disk with room
    filler = fill(full)
    os.truncate(filler, filler.stat().st_size - pages_left * os.sysconf("SC_PAGE_SIZE"))
    recipe = tmp_path / "early.yaml"
    recipe.write_text(tiny_recipe("early-failure", seed=2627))
    env = prefect_server.env("early-failure", MLFLOW_TRACKING_URI=uri, HF_HUB_OFFLINE="1")
    run = subprocess.run([ENGINEFORGE, "run", str(recipe), "--store", str(tmp_path / "store")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    print(f"exit {run.returncode}\n{run.stdout[-1500:]}{run.stderr[-1500:]}")
    assert run.returncode == 1 and "Traceback" not in run.stdout + run.stderr
    assert [line for line in run.stderr.splitlines() if line.startswith("error:")] == [full_line(full)]
    assert not (tmp_path / "store" / "download").exists()  # no stage started
    mlflow = MlflowClient(uri)
    (left,) = mlflow.search_runs([e.experiment_id for e in mlflow.search_experiments()])
    print(f"its MLflow run: {left.info.status}, {FAILED_BECAUSE_TAG}={left.data.tags.get(FAILED_BECAUSE_TAG)!r}")
    assert left.info.status == "FAILED"
    assert left.data.tags[FAILED_BECAUSE_TAG].startswith("OSError: [Errno 28] No space left on device")
    assert [artifact.path for artifact in mlflow.list_artifacts(left.info.run_id)] == written
