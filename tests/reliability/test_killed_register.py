"""A run SIGKILLed while it registers, for real: a process starts its MLflow run and registers a version
of the recipe's model, and kills itself (SIGKILL) at one of register's steps. What the next run calls
first (stale_runs.close_stale, also `engineforge doctor`) closes the run KILLED and undoes what it had
registered: no registered model without versions, no version of a KILLED run, `candidate` back on the
version it replaced. A real SQLite MLflow store; the kill point is the only thing the test arranges."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from mlflow.tracking import MlflowClient

from engineforge.tracking import mlflow_runs
from engineforge.orchestration.stale_runs import close_stale
from engineforge.recipe.file import parse_recipe

NAME = "killed-register"
RECIPE = f"name: {NAME}\nmodel:\n  source: synthetic:tiny-llama\nruntime: transformers\n"

# argv: tracking URI, recipe, MlflowClient method, "before" or "after" it runs
REGISTERS_AND_DIES = textwrap.dedent("""
    import os, signal, sys
    from mlflow.tracking import MlflowClient
    from engineforge.tracking import mlflow_runs
    from engineforge.recipe.file import parse_recipe
    os.environ["MLFLOW_TRACKING_URI"] = sys.argv[1]
    mlflow_run = mlflow_runs.start_run(parse_recipe(sys.argv[2]), sys.argv[2])
    method, when = sys.argv[3], sys.argv[4]
    real = getattr(MlflowClient, method)
    def dies(self, *args, **kwargs):
        if when == "after":
            real(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
    setattr(MlflowClient, method, dies)
    mlflow_run.register_version(sys.argv[5], "file:///store/build/new", "new-key", {})
""")


def _finished_version() -> str:
    """A version registered by a run that finished: what `candidate` pointed at before the kill."""
    mlflow_run = mlflow_runs.start_run(parse_recipe(RECIPE), RECIPE)
    version, _ = mlflow_run.register_version(NAME, "file:///store/build/old", "old-key", {})
    mlflow_run.finish(succeeded=True)
    return version


@pytest.mark.parametrize("method, when, before", [
    ("create_model_version", "before", False),  # the registered model created, no version yet
    ("set_registered_model_alias", "before", True),  # a new version, `candidate` still on the old one
    ("set_registered_model_alias", "after", True),  # `candidate` moved to the killed run's version
], ids=["model-without-version", "version-without-alias", "alias-on-killed-version"])
def test_a_kill_during_register_is_undone_whole_by_the_next_run(tmp_path, monkeypatch, method, when, before):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    old = _finished_version() if before else None
    dying = subprocess.run([sys.executable, "-c", REGISTERS_AND_DIES, uri, RECIPE, method, when, NAME],
                           capture_output=True, text=True, timeout=300)
    assert dying.returncode == -9, dying.stderr[-3000:]
    mlflow = MlflowClient(uri)
    left = [version.version for version in mlflow.search_model_versions(f"name = '{NAME}'")]
    assert mlflow.get_registered_model(NAME) and len(left) == (2 if before else 0), left  # what the kill left

    started = time.perf_counter()
    (line,) = close_stale(uri, prefect=False)
    print(f"kill {when} {method}: {line} ({time.perf_counter() - started:.2f} s)")
    versions = mlflow.search_model_versions(f"name = '{NAME}'")
    killed = [run for run in mlflow.search_runs([e.experiment_id for e in mlflow.search_experiments()])
              if run.info.status == "KILLED"]
    assert len(killed) == 1 and all(version.run_id != killed[0].info.run_id for version in versions)
    if before:
        assert [str(version.version) for version in versions] == [old]
        assert str(mlflow.get_model_version_by_alias(NAME, mlflow_runs.CANDIDATE_ALIAS).version) == old
    else:
        assert not mlflow.search_registered_models(f"name = '{NAME}'")
    assert close_stale(uri, prefect=False) == []  # undone once; the next run registers afresh
    version, reused = mlflow_runs.start_run(parse_recipe(RECIPE), RECIPE).register_version(
        NAME, "file:///store/build/new", "new-key", {})
    assert not reused and str(mlflow.get_model_version_by_alias(NAME, mlflow_runs.CANDIDATE_ALIAS).version) == version
