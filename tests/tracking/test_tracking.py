import math
from concurrent.futures import ProcessPoolExecutor

from engineforge.recipe.file import parse_recipe
from engineforge.tracking import mlflow_runs


def _experiments(uri: str) -> int:
    return len(mlflow_runs.client(uri).search_experiments())


def test_runs_starting_together_on_a_fresh_sqlite_store_all_get_a_client(tmp_path):
    uri = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    with ProcessPoolExecutor(3) as pool:
        assert list(pool.map(_experiments, [uri] * 3)) == [1, 1, 1]  # the Default experiment, no errors


def test_recipe_params_are_flat_dotted_keys():
    assert mlflow_runs.flatten({"a": {"b": 1, "c": [1, 2]}, "d": None}) == {"a.b": "1", "a.c": "[1, 2]", "d": "None"}


def test_metrics_are_stored_readable_to_seven_significant_digits_and_never_coarser_than_a_thousandth():
    assert mlflow_runs.readable(614.0577311077286) == 614.0577 and mlflow_runs.readable(0.05211236399918562) == 0.05211236
    assert mlflow_runs.readable(1796528961.123456) == 1796528961.123  # a large figure keeps its thousandths
    assert mlflow_runs.readable(32.0) == 32.0 and mlflow_runs.readable(0.0) == 0.0 and math.isnan(mlflow_runs.readable(math.nan))


def test_the_decisive_metrics_go_first_in_their_order_and_the_others_keep_theirs(tmp_path):
    figures = {"requests": 8.0, "ttft_ms_p50": 20.0, "e2e_ms_p50": 90.0, "output_tokens_per_s": 400.0, "errors": 0.0}
    assert [name for name, _ in mlflow_runs.decisive_first(figures)] == [
        "output_tokens_per_s", "ttft_ms_p50", "requests", "e2e_ms_p50", "errors"]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = mlflow_runs.client(uri).create_run("0").info.run_id
    mlflow_runs.TrackedRun(uri, run_id).log_metrics(figures)
    stored = list(mlflow_runs.client(uri).get_run(run_id).data.metrics)
    assert stored[:2] == ["output_tokens_per_s", "ttft_ms_p50"]  # the order MLflow's run page lists them in


RECIPE = "name: tracked\nmodel:\n  source: synthetic:tiny-llama\nruntime: transformers\n"


def _started(uri: str, monkeypatch, recipe: str = RECIPE) -> mlflow_runs.TrackedRun:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return mlflow_runs.start_run(parse_recipe(recipe), recipe)


def test_a_run_starts_in_an_experiment_that_opens_in_the_classic_runs_view(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow_client = mlflow_runs.client(uri)
    _started(uri, monkeypatch)
    assert mlflow_client.get_experiment_by_name("tracked").tags["mlflow.experimentKind"] == "custom_model_development"
    mlflow_client.create_experiment("other")  # one made without the tag (before it was set, or by another tool)
    _started(uri, monkeypatch, RECIPE + "tracking:\n  experiment: other\n")
    assert mlflow_client.get_experiment_by_name("other").tags["mlflow.experimentKind"] == "custom_model_development"


def test_a_local_runs_page_is_on_the_mlflow_ui_the_readme_starts_in_the_classic_view(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow_run = _started(uri, monkeypatch)
    experiment_id = mlflow_run.read().info.experiment_id
    assert mlflow_run.page_url() == (f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs/{mlflow_run.run_id}"
                                     "?workflowType=machine_learning")


def test_a_run_ended_killed_registers_nothing_and_gives_candidate_back(tmp_path, monkeypatch):
    """Ctrl-C: the run ends KILLED, its version is removed and `candidate` is back on the version it replaced."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    finished = _started(uri, monkeypatch)
    old, _ = finished.register_version("tracked", "file:///store/build/old", "old-key", {})
    finished.finish(succeeded=True)
    stopped = _started(uri, monkeypatch)
    stopped.register_version("tracked", "file:///store/build/new", "new-key", {})

    stopped.end_killed()

    mlflow_client = mlflow_runs.client(uri)
    assert stopped.read().info.status == "KILLED"
    assert [str(version.version) for version in mlflow_client.search_model_versions("name = 'tracked'")] == [old]
    assert str(mlflow_client.get_model_version_by_alias("tracked", mlflow_runs.CANDIDATE_ALIAS).version) == old
