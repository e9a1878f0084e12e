"""`validate.repeats` on one run, end to end on the CPU (real Prefect API, MLflow store, `transformers serve`):
each repeat is its own stored measurement, and a run asking for more repeats reuses the ones it has."""

import pytest
from mlflow.tracking import MlflowClient

from flows.model_to_deployment import model_to_deployment

pytestmark = pytest.mark.integration

VALIDATE = ("validate:\n  requests: 4\n  concurrency: 2\n  warmup_requests: 1\n  max_tokens: 8\n"
            "  repeats: {repeats}\n  restart_server: false\n  gates:\n    max_ttft_ms_p99: 600000\n")


def entries(store) -> dict[str, float]:
    return {path.name: path.stat().st_mtime for path in (store / "validate").iterdir()}


def test_repeats_are_stored_one_by_one_and_more_repeats_reuse_them(
    prefect_api, tiny_model_dir, mlflow_uri, monkeypatch, no_docker, tmp_path, make_recipe
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    store = tmp_path / "store"
    two, _ = make_recipe(str(tiny_model_dir), validate=VALIDATE.format(repeats=2))
    first = model_to_deployment(recipe_yaml=two, store_root=str(store))
    validate = next(stage for stage in first["stages"] if stage["stage"] == "validate")
    assert validate["status"] == "ran" and "over 2 repeats" in validate["summary"]
    repeat_keys = validate["outputs"]["repeat_keys"]
    assert set(entries(store)) == {*repeat_keys, validate["key"]}  # each repeat its own entry, then their means
    per_repeat = [figures["output_tokens_per_s"] for figures in validate["outputs"]["repeat_figures"]]
    assert first["figures"]["output_tokens_per_s"] == pytest.approx(sum(per_repeat) / 2)
    run = MlflowClient(mlflow_uri).get_run(first["mlflow"]["run_id"])
    assert run.data.metrics["validate_repeats"] == 2 and run.data.metrics["output_tokens_per_s_ci95"] > 0
    history = MlflowClient(mlflow_uri).get_metric_history(run.info.run_id, "output_tokens_per_s")
    steps = sorted((m.step, m.value) for m in history)[:2]  # stored readable: 7 significant digits
    assert [step for step, _ in steps] == [0, 1] and [value for _, value in steps] == pytest.approx(per_repeat, rel=1e-6)
    logs = [(store / "validate" / key / "server.log").read_text() for key in repeat_keys]
    assert logs[0] and logs[0] == logs[1]  # restart_server false: both repeats were served by one server
    before = entries(store)

    three, _ = make_recipe(str(tiny_model_dir), validate=VALIDATE.format(repeats=3))
    more = model_to_deployment(recipe_yaml=three, store_root=str(store))
    again = next(stage for stage in more["stages"] if stage["stage"] == "validate")
    assert again["outputs"]["repeat_keys"][:2] == repeat_keys  # the two it had, reused untouched
    assert all(entries(store)[key] == before[key] for key in repeat_keys)
    assert len(set(entries(store)) - set(before)) == 2  # the third repeat and the new means
    assert again["outputs"]["repeat_figures"][:2] == validate["outputs"]["repeat_figures"]

    rerun = model_to_deployment(recipe_yaml=three, store_root=str(store))
    assert next(s for s in rerun["stages"] if s["stage"] == "validate")["status"] == "cached"
