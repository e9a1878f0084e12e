"""A full disk under the tracking database: `engineforge run` says so in one line (the path and its
free space), exit 1, no traceback. A real tmpfs, filled, holding a real MLflow SQLite database; a real
local Prefect server (the session's)."""

import subprocess
import uuid

import pytest

from engineforge.tracking import mlflow_runs
from engineforge.cli.app import main

pytestmark = pytest.mark.integration


@pytest.fixture
def full_tmpfs(tmp_path):
    mount = tmp_path / "full"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root (CAP_SYS_ADMIN)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_under_mlflow_db_is_one_line_and_exit_1(full_tmpfs, tmp_path, monkeypatch, capsys):
    uri = f"sqlite:///{full_tmpfs / 'mlflow.db'}"
    mlflow_runs.client(uri).search_experiments()  # the database exists, then the disk fills up
    with open(full_tmpfs / "filler", "wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError:
            pass
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("ENGINEFORGE_STORE", str(tmp_path / "store"))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: full-{uuid.uuid4().hex[:8]}\nmodel:\n  source: synthetic:tiny-llama\n  dtype: float32\n"
                      "runtime: transformers\nserve:\n  device: cpu\n")
    capsys.readouterr()
    assert main(["run", str(recipe)]) == 1
    out, err = capsys.readouterr()
    errors = [line for line in (out + err).splitlines() if line.startswith("error:")]
    assert errors == [f"error: disk full under {full_tmpfs / 'mlflow.db'} (0.0 MiB free); free space there, or point "
                      "MLFLOW_TRACKING_URI / --store elsewhere, and run again"], out + err
    assert "Traceback" not in out + err and len((out + err).splitlines()) <= 3, out + err
