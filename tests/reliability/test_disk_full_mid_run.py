"""A disk fills while `engineforge run` is in its validate stage, for real: a tmpfs, filled by this test
once validate's server is up, holding the run's MLflow SQLite database (and the artifacts beside it),
or only those artifacts. The run ends in one line naming the full place and its free space, exit 1, no
traceback, its `transformers serve` gone with it. Its MLflow run is closed FAILED by the run when the
database still takes that write; when the database's own disk is full it cannot be, and the cleanup the
next run starts with (`stale_runs.close_stale`) closes it once space is back. A real Prefect server,
real MLflow, a real `transformers serve` on the tiny synthetic model; mounting needs root."""

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

from engineforge.tracking import mlflow_runs
from engineforge.tracking.mlflow_tags import CLOSED_BY_TAG
from engineforge.orchestration import stale_runs

pytestmark = pytest.mark.integration
ENGINEFORGE = str(Path(sys.executable).parent / "engineforge")


def mounted_tmpfs(mount: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CAP_SYS_ADMIN)")
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], check=True)
    return mount


@pytest.fixture
def mounts():
    """Mount points to unmount after the test."""
    mounted: list[Path] = []
    yield mounted
    for mount in mounted:
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


def run_until_the_disk_fills(tmp_path: Path, prefect_server, uri: str, full: Path, name: str):
    """`engineforge run` with tracking at `uri`; `full` filled once validate serves. Returns (the
    filler file, the run's only MLflow run as it was left, stderr's error lines)."""
    mlflow_runs.client(uri).search_experiments()  # the database exists before the run; the disk fills during it
    recipe = tmp_path / f"{name}.yaml"
    recipe.write_text(tiny_recipe(name, seed=2626))
    env = prefect_server.env(name, MLFLOW_TRACKING_URI=uri, DOCKER_HOST=f"unix://{tmp_path / 'none.sock'}", HF_HUB_OFFLINE="1")
    run = subprocess.Popen([ENGINEFORGE, "run", str(recipe), "--store", str(tmp_path / "store")], cwd=tmp_path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 400
    while not (servers := serving(run.pid)):
        assert run.poll() is None, run.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "validate never started its server"
        time.sleep(0.2)
    filler = fill(full)
    filled = time.monotonic()
    out, err = run.communicate(timeout=600)
    print(f"{name}: the run exited {run.returncode} {time.monotonic() - filled:.1f} s after the disk filled\n{out[-2000:]}{err[-2000:]}")
    assert run.returncode == 1 and "Traceback" not in out + err, out[-2000:] + err[-2000:]
    assert not [p for p in servers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]  # died with the run
    mlflow = MlflowClient(uri)
    (left,) = mlflow.search_runs([e.experiment_id for e in mlflow.search_experiments()])
    print(f"{name}: its MLflow run {left.info.status}")
    return filler, left, [line for line in err.splitlines() if line.startswith("error:")]


def full_line(path) -> str:
    return (f"error: disk full under {path} (0.0 MiB free); free space there, or point MLFLOW_TRACKING_URI / --store "
            "elsewhere, and run again")


def test_a_disk_full_under_mlflow_db_mid_run_is_one_line_and_the_next_runs_cleanup_closes_the_run(
        tmp_path, prefect_server, mounts):
    mounts.append(full := mounted_tmpfs(tmp_path / "db"))
    database = full / "mlflow.db"
    uri = f"sqlite:///{database}"
    filler, left, errors = run_until_the_disk_fills(tmp_path, prefect_server, uri, full, "disk-full-mid-run")
    assert errors == [full_line(database)]
    assert left.info.status == "RUNNING"  # closing it is a write to the full database: it cannot be, yet
    filler.unlink()  # space is back: the next run starts with this cleanup (as `engineforge doctor` does)
    started = time.monotonic()
    closed = stale_runs.close_stale(uri, prefect=False)
    print(f"next run's cleanup: {closed} in {time.monotonic() - started:.2f} s")
    closed_run = MlflowClient(uri).get_run(left.info.run_id)
    assert closed == [f"MLflow run {left.info.run_id} ({left.info.run_name}) of a dead process: KILLED"]
    assert closed_run.info.status == "KILLED" and CLOSED_BY_TAG in closed_run.data.tags


def test_a_disk_full_under_the_artifacts_beside_mlflow_db_closes_the_run_failed(tmp_path, prefect_server, mounts):
    """The database's disk has room, its artifacts' (`mlartifacts` beside it) is full: the run can be
    closed, and is, FAILED (before, writing the lock file failed and the run stayed RUNNING)."""
    mounts.append(full := mounted_tmpfs(tmp_path / "mlartifacts"))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _, left, errors = run_until_the_disk_fills(tmp_path, prefect_server, uri, full, "artifacts-full-mid-run")
    assert errors == [full_line(full)]
    assert left.info.status == "FAILED"
