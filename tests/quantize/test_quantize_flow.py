"""The quantize stage in the flow: real Prefect API, real MLflow store, real ModelOpt on the CPU, and the
fake-quantized model served by real `transformers serve` through ModelOpt's restoring wrapper."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from engineforge.sources import synthetic
from engineforge.errors import StageFailed
from engineforge.quantize.serve import SERVER_FILE
from engineforge.recipe.schema import SyntheticModel
from flows.model_to_deployment import model_to_deployment

pytestmark = pytest.mark.integration

QUANTIZE = """quantize:
  format: int8_sq
  calibration: {{samples: 4, eval_samples: 4, seq_len: 32, batch_size: 4}}
  gates: {{max_perplexity_increase: 0.05, min_token_agreement: {agreement}}}
"""
SMALL_LOAD = "validate:\n  requests: 2\n  concurrency: 1\n  warmup_requests: 0\n  max_tokens: 4\n"
NO_REGISTRY = "tracking:\n  register_model: false\n"


def statuses(summary: dict) -> dict[str, str]:
    return {stage["stage"]: stage["status"] for stage in summary["stages"]}


def test_failed_gate_stops_before_build_then_relaxed_gate_reuses_the_calibration(
    prefect_api, mlflow_uri, monkeypatch, no_docker, tmp_path, make_recipe
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    model_dir = synthetic.write_synthetic_model(SyntheticModel(hidden_size=128, intermediate_size=256), tmp_path / "model")
    store = tmp_path / "store"
    client = MlflowClient(mlflow_uri)

    def run(agreement: float) -> dict:
        text, _ = make_recipe(str(model_dir), quantize=QUANTIZE.format(agreement=agreement), validate=SMALL_LOAD,
                              tracking=NO_REGISTRY)
        return model_to_deployment(recipe_yaml=text, recipe_origin="test.yaml", store_root=str(store))

    with pytest.raises(StageFailed) as failed:
        run(agreement=0.999)
    assert failed.value.stage == "quantize" and "top-1 token agreement" in failed.value.cause
    stopped = failed.value.summary
    assert statuses(stopped) == {"download": "ran"}  # the gate fails the quantize task itself; nothing built
    stopped_run = client.get_run(stopped["mlflow"]["run_id"])
    assert stopped_run.data.tags["engineforge.quantize.gates"] == "failed"
    assert 0 < stopped_run.data.metrics["quantize_token_agreement"] < 0.999

    passed = run(agreement=0.5)
    assert statuses(passed) == {"download": "cached", "quantize": "cached", "shard": "skipped", "build": "ran",
                                "validate": "ran", "package": "skipped", "register": "skipped"}
    mlflow_run = client.get_run(passed["mlflow"]["run_id"])
    assert mlflow_run.data.tags["engineforge.quantize.gates"] == "passed"
    assert mlflow_run.data.tags["engineforge.quantize.format"] == "int8_sq"
    assert mlflow_run.data.metrics["quantize_token_agreement"] == stopped_run.data.metrics["quantize_token_agreement"]
    assert {"quantize_source_perplexity", "quantize_quantized_perplexity", "quantize_max_relative_logit_error"} <= set(
        mlflow_run.data.metrics)
    hf_quant = json.loads(Path(client.download_artifacts(mlflow_run.info.run_id, "quantize/hf_quant_config.json",
                                                         str(tmp_path))).read_text())
    assert hf_quant["quantization"]["quant_algo"] == "W8A8_SQ_PER_CHANNEL"
    lock = json.loads(Path(client.download_artifacts(mlflow_run.info.run_id, "engineforge.lock.json",
                                                     str(tmp_path))).read_text())
    assert lock["quantization"]["format"] == "int8_sq" and lock["quantization"]["modelopt_version"] == "0.47.0"
    assert lock["quantization"]["calibration_sha256"] == mlflow_run.data.tags["engineforge.quantize.calibration_sha256"]

    validate = next(stage for stage in passed["stages"] if stage["stage"] == "validate")
    assert validate["outputs"]["server_argv"][1].endswith(f"/model/{SERVER_FILE}")
    assert passed["figures"]["errors"] == 0 and passed["figures"]["completed"] == 2
    server_log = (Path(validate["path"]) / "server.log").read_text()
    # Served quantized, not the source weights: restored in the process that loads the model, none unread.
    assert "Restored ModelOpt state" in server_log and "UNEXPECTED" not in server_log

    again = run(agreement=0.5)
    assert statuses(again)["quantize"] == "cached" and statuses(again)["build"] == "cached"
