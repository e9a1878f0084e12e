"""tasks.stage (the one generic stage task) against a real Prefect API: the runtime is resolved once per run and every
stage's content key is computed once (the package key pings the Docker daemon, so twice was costly); a stage that
skips itself at run time ends its task run in a Completed state named Skipped, with its reason."""

from collections import Counter

import pytest

import engineforge.runtimes
import engineforge.stages.build
import engineforge.stages.package
from engineforge.tracking import mlflow_runs
from engineforge.tracking.mlflow_tags import FLOW_RUN_TAG
from engineforge.stages.pipeline import NAMES, STAGES
from engineforge.stages.stage import Stage
from flows.model_to_deployment import model_to_deployment
from tasks.stage import stage_task


class CountingRuntimes(dict):
    def __init__(self, runtimes, counts):
        super().__init__(runtimes)
        self.counts = counts

    def __getitem__(self, name):
        self.counts[name] += 1
        return super().__getitem__(name)


def counting(function, counts, label):
    def counted(*args, **kwargs):
        counts[label] += 1
        return function(*args, **kwargs)

    return counted


@pytest.mark.integration
def test_one_run_resolves_its_runtime_once_and_computes_each_key_once(prefect_api, tiny_model_dir, mlflow_uri,
                                                                      no_docker, monkeypatch, tmp_path, make_recipe):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    counts: Counter = Counter()
    monkeypatch.setattr(engineforge.runtimes, "RUNTIMES", CountingRuntimes(engineforge.runtimes.RUNTIMES, counts))
    monkeypatch.setattr(engineforge.stages.build, "content_key", counting(engineforge.stages.build.content_key, counts, "build"))
    # The package key pings the Docker daemon (its work compares the key with a daemon's, without a ping).
    monkeypatch.setattr(engineforge.stages.package, "package_key", counting(engineforge.stages.package.package_key, counts, "package"))
    text, _ = make_recipe(str(tiny_model_dir), name="key-once-test", validate="validate:\n  enabled: false\n")

    summary = model_to_deployment(recipe_yaml=text, recipe_origin="test.yaml", store_root=str(tmp_path / "store"))

    statuses = {stage["stage"]: stage["status"] for stage in summary["stages"]}
    assert statuses["build"] == "ran" and statuses["package"] == "skipped"  # no Docker daemon: it looked, once
    assert counts == Counter({"transformers": 1, "build": 1, "package": 1})

    from prefect_services import task_runs

    flow_run_id = mlflow_runs.client(mlflow_uri).get_run(summary["mlflow"]["run_id"]).data.tags[FLOW_RUN_TAG]
    (package,) = task_runs([flow_run_id], "package", expected=1)
    assert package.state.name == "Skipped" and package.state.is_completed()  # what the Prefect UI shows; the flow went on
    assert package.state.message.startswith("no Docker daemon at ")


def test_every_stage_runs_as_one_prefect_task_named_after_it_with_its_retries():
    """The Prefect task names, retries and delays the per-stage tasks had (what the Prefect UI shows)."""
    assert NAMES == ("download", "quantize", "shard", "build", "validate", "package", "register")
    assert all(isinstance(stage, Stage) for stage in STAGES)
    options = {stage.name: (stage_task(stage).name, stage_task(stage).retries, stage_task(stage).retry_delay_seconds)
               for stage in STAGES}
    assert options == {
        "download": ("download", 3, [5, 30, 120]), "quantize": ("quantize", 0, 0), "shard": ("shard", 0, 0),
        "build": ("build", 0, 0), "validate": ("validate", 0, 0), "package": ("package", 1, [10]),
        "register": ("register", 2, [5, 30]),
    }
    assert stage_task(STAGES[0]) is stage_task(STAGES[0])  # made once
