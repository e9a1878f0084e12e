"""A sweep's predictions are for the GPU each child ran on: a child's run names its host's GPU (NVML, faked
here, as each worker would see it), and the sweep predicts that variant for that GPU with the real
AIConfigurator library once the child has run, whatever GPU the sweep's own host has (here: none)."""

import sys
import types
from pathlib import Path

import pytest

from engineforge.tracking import mlflow_runs
from engineforge.predict import PREDICTED, predict
from engineforge.recipe.file import parse_recipe
from engineforge.sweep.plan import plan_sweep
from engineforge.sweep.predictions import log_predictions
from engineforge.tracking.mlflow_tags import GPU_TAG, PARENT_RUN_TAG, VARIANT_TAG
from engineforge.sweep.records import sweep_records
from engineforge.sweep.champion import decide
from tests.doubles.nvml import fake_pynvml

pytest.importorskip("aiconfigurator.cli.api", reason="the predict extra is not installed")
RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "trtllm-llama70b-sweep.yaml"


def on_host(monkeypatch, nvml_name: str | None) -> None:
    """This process as a host whose GPUs NVML names `nvml_name`, or as a host without NVML (None)."""
    if nvml_name is None:
        monkeypatch.setitem(sys.modules, "pynvml", None)  # the import fails: no GPU here
        return
    nvml = fake_pynvml(gpus=8)
    nvml.nvmlDeviceGetName = lambda handle: nvml_name.encode()
    nvml.nvmlDeviceGetMemoryInfo = lambda handle: types.SimpleNamespace(total=80 * 2**30, used=0)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)


def run_children(monkeypatch, mlflow_uri: str, layouts: str, hosts: dict[str, str | None]):
    """The sweep planned on a host without a GPU, then each variant's child run started on its own host."""
    text = RECIPE.read_text().split("sweep:")[0] + f"tracking:\n  uri: {mlflow_uri}\nsweep:\n  layouts: {layouts}\n"
    on_host(monkeypatch, None)
    recipe = parse_recipe(text)
    planned = plan_sweep(recipe)
    parent = mlflow_runs.start_run(recipe, text)
    run_ids = {}
    for variant in planned.variants:
        on_host(monkeypatch, hosts[variant.name])
        child = mlflow_runs.start_run(variant.recipe, variant.yaml_text())
        child.set_tags({PARENT_RUN_TAG: parent.run_id, VARIANT_TAG: variant.name})
        run_ids[variant.name] = child.run_id
    on_host(monkeypatch, None)
    return planned, parent.uri, parent, run_ids


def predicted(record) -> dict[str, float]:
    return {name: value for name, value in record.figures.items() if name.startswith(PREDICTED)}


def test_each_variant_is_predicted_for_the_gpu_its_child_ran_on(monkeypatch, mlflow_uri):
    hosts = {"tp4": "NVIDIA H200", "tp8": "NVIDIA H100 80GB HBM3", "tp4-pp2": "NVIDIA A100-SXM4-80GB"}
    planned, uri, parent, run_ids = run_children(monkeypatch, mlflow_uri, "[{tensor: 4}, {tensor: 4, pipeline: 2}, "
                                                 "{tensor: 8}]", hosts)

    notes = log_predictions(uri, planned, run_ids)

    records = {record.name: record for record in sweep_records(parent)}
    variants = {variant.name: variant.recipe for variant in planned.variants}
    for name, gpu in (("tp4", "H200"), ("tp8", "H100-SXM")):
        assert records[name].predicted_gpu == gpu
        assert predicted(records[name]) == pytest.approx(predict(variants[name], planned.model_config, gpu).metrics())
    # Which GPU matters: tp8 on an H200 would have been predicted otherwise.
    assert predicted(records["tp8"]) != pytest.approx(predict(variants["tp8"], planned.model_config, "H200").metrics())
    # AIConfigurator has no TensorRT-LLM 1.3.0rc20 data for A100: no figure, and the note names the GPU.
    assert records["tp4-pp2"].predicted_gpu is None and predicted(records["tp4-pp2"]) == {}
    assert notes == ["No prediction for tp4-pp2 on A100-80GB: AIConfigurator has no trtllm 1.3.0rc20 data for a100_sxm."]
    table = decide(list(records.values()), "output_tokens_per_s_per_gpu").table(list(records.values()), notes)
    assert "| 1 | - | H200 | not measured |" in table and "| - | H100-SXM | not measured |" in table and notes[0] in table


def test_a_child_on_a_host_without_a_gpu_gets_no_figure_and_a_note(monkeypatch, mlflow_uri):
    planned, uri, parent, run_ids = run_children(monkeypatch, mlflow_uri, "[{tensor: 4}]", {"tp4": None})
    assert GPU_TAG not in mlflow_runs.client(uri).get_run(run_ids["tp4"]).data.tags

    assert log_predictions(uri, planned, run_ids) == ["No prediction for tp4: no GPU where it ran."]
    (record,) = sweep_records(parent)
    assert predicted(record) == {} and record.predicted_gpu is None


def test_each_prediction_records_the_backend_version_and_database_it_read(monkeypatch, mlflow_uri):
    from importlib.metadata import version

    planned, uri, parent, run_ids = run_children(monkeypatch, mlflow_uri, "[{tensor: 4}]", {"tp4": "NVIDIA H200"})
    log_predictions(uri, planned, run_ids)
    tags = mlflow_runs.client(uri).get_run(run_ids["tp4"]).data.tags
    assert planned.variants[0].recipe.trtllm.version != "1.3.0rc20"  # what the recipe targets is not what was modelled
    assert {key: value for key, value in tags.items() if key.startswith("engineforge.predicted.")} == {
        "engineforge.predicted.gpu": "H200", "engineforge.predicted.backend": "trtllm",
        "engineforge.predicted.backend_version": "1.3.0rc20", "engineforge.predicted.database": "h200_sxm/trtllm/1.3.0rc20",
        "engineforge.predicted.predictor": f"aiconfigurator-core {version('aiconfigurator-core')}"}
