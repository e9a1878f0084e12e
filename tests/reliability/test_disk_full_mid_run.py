"""The disk under the tracking database fills while `engineforge run` is in its validate stage, for real:
a tmpfs holding the run's MLflow SQLite database, filled by this test once validate's server is up. The
run ends in one line naming the database and its free space, exit 1, no traceback, its `transformers
serve` gone with it; the MLflow run it could not close (every write to a full SQLite database fails)
is closed by the cleanup the next run starts with (`stale_runs.close_stale`) once space is back. A real
Prefect server, real MLflow, a real `transformers serve` on the tiny synthetic model."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from mlflow.tracking import MlflowClient
from prefect_services import tiny_recipe

from engineforge import tracking
from engineforge.mlflow_tags import CLOSED_BY_TAG
from engineforge.orchestration import stale_runs

pytestmark = pytest.mark.integration
ENGINEFORGE = str(Path(sys.executable).parent / "engineforge")


@pytest.fixture
def tmpfs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CAP_SYS_ADMIN)")
    mount = tmp_path / "db"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path) -> Path:
    filler = mount / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    return filler


def serving(pid: int) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if "serve" in " ".join(p.cmdline())]
    except psutil.NoSuchProcess:
        return []


def test_a_disk_full_under_mlflow_db_mid_run_is_one_line_and_the_next_runs_cleanup_closes_the_run(
        tmpfs, tmp_path, prefect_server):
    database = tmpfs / "mlflow.db"
    uri = f"sqlite:///{database}"
    tracking.client(uri).search_experiments()  # the database exists before the run; the disk fills during it
    recipe = tmp_path / "full.yaml"
    recipe.write_text(tiny_recipe("disk-full-mid-run", seed=2626))
    env = prefect_server.env("disk-full-mid-run", MLFLOW_TRACKING_URI=uri, DOCKER_HOST=f"unix://{tmp_path / 'none.sock'}",
                             HF_HUB_OFFLINE="1")
    run = subprocess.Popen([ENGINEFORGE, "run", str(recipe), "--store", str(tmp_path / "store")], cwd=tmp_path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 400
    while not (servers := serving(run.pid)):
        assert run.poll() is None, run.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "validate never started its server"
        time.sleep(0.2)
    filler = fill(tmpfs)
    filled = time.monotonic()
    out, err = run.communicate(timeout=600)
    print(f"disk full during validate: the run exited {run.returncode} {time.monotonic() - filled:.1f} s after the disk "
          f"filled\n{out[-2000:]}{err[-2000:]}")
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert run.returncode == 1 and errors == [
        f"error: disk full under {database} (0.0 MiB free); free space there, or point MLFLOW_TRACKING_URI / --store "
        "elsewhere, and run again"], out[-2000:] + err[-2000:]
    assert "Traceback" not in out + err
    assert not [p for p in servers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]  # died with the run

    mlflow = MlflowClient(uri)
    (left,) = mlflow.search_runs([e.experiment_id for e in mlflow.search_experiments()])
    assert left.info.status == "RUNNING"  # closing it is a write to the full database: it cannot be, yet
    filler.unlink()  # space is back: the next run starts with this cleanup (as `engineforge doctor` does)
    started = time.monotonic()
    closed = stale_runs.close_stale(uri, prefect=False)
    print(f"next run's cleanup: {closed} in {time.monotonic() - started:.2f} s")
    closed_run = mlflow.get_run(left.info.run_id)
    assert closed == [f"MLflow run {left.info.run_id} ({left.info.run_name}) of a dead process: KILLED"]
    assert closed_run.info.status == "KILLED" and CLOSED_BY_TAG in closed_run.data.tags
