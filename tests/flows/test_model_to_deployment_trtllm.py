"""Both TensorRT-LLM runtimes end to end through the real flow (Prefect API, MLflow store, loadgen)
with TEST DOUBLES of trtllm-build, trtllm-serve and trtllm-bench on PATH (tests/doubles/README.md).

Real TensorRT-LLM is NOT executed here: the doubles check their command lines and inputs against
TensorRT-LLM's parsers and formats, then hand the weights to the reference server (transformers).
"""

import json
from pathlib import Path

import pytest
import yaml
from conftest import recipe_text
from mlflow.tracking import MlflowClient
from trtllm_helpers import DOUBLE_VERSION, use_doubles, without_trtllm

from engineforge.errors import UserError
from flows.model_to_deployment import model_to_deployment

pytestmark = pytest.mark.integration

BUILD = "build:\n  max_batch_size: 4\n  max_input_len: 64\n  max_seq_len: 128\n"


@pytest.fixture
def gpu_slots_declared(prefect_api, monkeypatch, tmp_path):
    """This host's GPU concurrency limit (engineforge.orchestration.gpu_slots), as `engineforge worker` declares it:
    TensorRT-LLM builds take tensor x pipeline slots even here, where the doubles use none."""
    from engineforge.orchestration import gpu_slots

    monkeypatch.setenv(gpu_slots.LIMIT_ENV, f"gpu-trtllm-test-{tmp_path.name}")
    monkeypatch.setenv("ENGINEFORGE_GPU_LOCK_DIR", str(tmp_path / "gpu-locks"))
    gpu_slots.declare_limit(2)


def trtllm_recipe(model_dir: Path, runtime: str, name: str, **sections: str) -> str:
    text = recipe_text(str(model_dir), name=name, build=BUILD, **sections)
    return text.replace("runtime: transformers", f"runtime: {runtime}")


def run_flow(text: str, store: Path) -> dict:
    return model_to_deployment(recipe_yaml=text, recipe_origin="test.yaml", store_root=str(store))


def statuses(summary: dict) -> dict[str, str]:
    return {stage["stage"]: stage["status"] for stage in summary["stages"]}


def stage(summary: dict, name: str) -> dict:
    return next(s for s in summary["stages"] if s["stage"] == name)


def lock_of(client: MlflowClient, run_id: str, tmp_path: Path) -> dict:
    return json.loads(Path(client.download_artifacts(run_id, "engineforge.lock.json", str(tmp_path))).read_text())


def test_trtllm_pytorch_backend_builds_options_serves_and_benches_with_doubles(
    prefect_api, gpu_slots_declared, tiny_model_dir, mlflow_uri, monkeypatch, no_docker, tmp_path
):
    use_doubles(monkeypatch)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    validate = ("validate:\n  requests: 4\n  concurrency: 2\n  warmup_requests: 1\n  max_tokens: 8\n"
                "  trtllm_bench:\n    mode: throughput\n    requests: 2\n")
    text = trtllm_recipe(tiny_model_dir, "trtllm", "trtllm-e2e", validate=validate)

    summary = run_flow(text, tmp_path / "store")

    assert statuses(summary) == {"download": "ran", "shard": "skipped", "build": "ran", "validate": "ran",
                                 "package": "skipped", "register": "ran"}
    built = stage(summary, "build")
    served = Path(built["path"]) / built["outputs"]["served_dir"]
    assert (served / "config.json").is_file() and (served / "extra_llm_api_options.yaml").is_file()
    assert built["outputs"]["tensorrt_llm_version"] == DOUBLE_VERSION
    validated = stage(summary, "validate")
    assert validated["outputs"]["server_argv"][:4] == ["trtllm-serve", str(served), "--backend", "pytorch"]
    figures = summary["figures"]
    assert figures["completed"] == 4 and figures["errors"] == 0
    assert figures["trtllm_bench_requests"] == 2 and figures["trtllm_bench_output_tokens_per_s"] > 0
    client = MlflowClient(mlflow_uri)
    run = client.get_run(summary["mlflow"]["run_id"])
    assert run.data.metrics["trtllm_bench_ttft_ms_p50"] > 0 and run.data.metrics["output_tokens_per_s"] > 0
    assert run.data.tags["engineforge.runtime"] == "trtllm"
    assert lock_of(client, run.info.run_id, tmp_path)["tools"]["tensorrt_llm"] == DOUBLE_VERSION


def test_trtllm_13_knobs_reach_the_serve_double_of_13_through_the_flow(
    prefect_api, gpu_slots_declared, tiny_model_dir, mlflow_uri, monkeypatch, no_docker, tmp_path
):
    """TensorRT-LLM 1.3.0rc30 as the recipe's target: the trtllm-serve double checks the `--config` file against
    1.3.0rc30's definitions (a key outside them would stop it), so the knobs pass here as they pass the recipe."""
    use_doubles(monkeypatch, "1.3.0rc30")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    trtllm = ("trtllm:\n  version: 1.3.0rc30\n  llm_api:\n    enable_chunked_prefill: true\n    stream_interval: 2\n"
              "    cuda_graph_config: {enable_padding: true, max_batch_size: 4}\n")
    text = trtllm_recipe(tiny_model_dir, "trtllm", "trtllm-13-e2e", trtllm=trtllm)

    summary = run_flow(text, tmp_path / "store")

    assert statuses(summary)["validate"] == "ran" and statuses(summary)["build"] == "ran"
    built = stage(summary, "build")
    assert built["outputs"]["tensorrt_llm_version"] == "1.3.0rc30"
    options = yaml.safe_load((Path(built["path"]) / built["outputs"]["options_file"]).read_text())
    assert options["stream_interval"] == 2 and options["cuda_graph_config"]["enable_padding"] is True
    argv = stage(summary, "validate")["outputs"]["server_argv"]
    assert argv[argv.index("--config") + 1].endswith("extra_llm_api_options.yaml")
    assert summary["figures"]["completed"] == 4 and summary["figures"]["errors"] == 0


def test_trtllm_engine_shards_builds_engines_and_serves_them_with_doubles(
    prefect_api, gpu_slots_declared, tiny_model_dir, mlflow_uri, monkeypatch, no_docker, tmp_path
):
    use_doubles(monkeypatch)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    text = trtllm_recipe(tiny_model_dir, "trtllm-engine", "trtllm-engine-e2e",
                         parallel="parallel:\n  tensor: 2\n")

    summary = run_flow(text, tmp_path / "store")

    assert statuses(summary) == {"download": "ran", "shard": "ran", "build": "ran", "validate": "ran",
                                 "package": "skipped", "register": "ran"}
    shard = stage(summary, "shard")
    assert sorted(shard["outputs"]["files"]) == ["rank0.safetensors", "rank1.safetensors"]
    built = stage(summary, "build")
    engine = Path(built["path"]) / built["outputs"]["engine_dir"]
    assert sorted(p.name for p in engine.iterdir()) == ["config.json", "rank0.engine", "rank1.engine"]
    assert json.loads((engine / "config.json").read_text())["version"] == DOUBLE_VERSION
    # The accuracy check and roofline read the Hugging Face checkpoint the engine was built from.
    assert built["outputs"]["reference_dir"] == stage(summary, "shard")["outputs"]["hf_dir"]
    argv = built["outputs"]["trtllm_build_argv"]
    assert argv[0] == "trtllm-build" and argv[argv.index("--workers") + 1] == "1"  # no GPU visible here
    assert summary["figures"]["completed"] == 4 and summary["figures"]["errors"] == 0
    client = MlflowClient(mlflow_uri)
    run_id = summary["mlflow"]["run_id"]
    log = Path(client.download_artifacts(run_id, "build/build.log", str(tmp_path))).read_text()
    assert "rank 1: wrote" in log and "test double" in log  # trtllm-build's own output, logged to MLflow


def test_disaggregated_layout_validates_through_context_generation_and_front_doubles(
    prefect_api, gpu_slots_declared, tiny_model_dir, mlflow_uri, monkeypatch, no_docker, tmp_path
):
    use_doubles(monkeypatch)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    serve = ("serve:\n  device: cpu\n  startup_timeout_s: 180\n  disaggregated:\n"
             "    context: {instances: 1}\n    generation: {instances: 1}\n")
    text = trtllm_recipe(tiny_model_dir, "trtllm", "trtllm-disagg-e2e", serve=serve)

    summary = run_flow(text, tmp_path / "store")

    assert summary["figures"]["completed"] == 4 and summary["figures"]["errors"] == 0
    validated = stage(summary, "validate")
    assert validated["outputs"]["server_argv"][:2] == ["trtllm-serve", "disaggregated"]
    built = stage(summary, "build")
    served = Path(built["path"]) / built["outputs"]["served_dir"]
    assert {p.name for p in (served / "disaggregated").iterdir()} == {
        "context_options.yaml", "generation_options.yaml", "disagg_config.yaml", "launch.json"}


def test_missing_tensorrt_llm_stops_the_flow_at_once_without_fallback(
    prefect_api, tiny_model_dir, mlflow_uri, monkeypatch, tmp_path
):
    without_trtllm(monkeypatch)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    text = trtllm_recipe(tiny_model_dir, "trtllm-engine", "no-trtllm")

    with pytest.raises(UserError) as error:
        run_flow(text, tmp_path / "store")

    message = str(error.value)
    assert "\n" not in message
    assert "Python package tensorrt_llm" in message and "trtllm-build on PATH" in message
    assert "docker/worker.Dockerfile" in message and "work pool" in message
    assert not (tmp_path / "store").exists()  # nothing ran, no other runtime stood in
    assert MlflowClient(mlflow_uri).search_experiments(filter_string="name = 'no-trtllm'") == []


def test_trtllm_engine_serves_fp8_rank_files_through_validate_with_doubles(
    prefect_api, gpu_slots_declared, tiny_model_dir, mlflow_uri, monkeypatch, no_docker, tmp_path
):
    """Real ModelOpt calibrates and writes the FP8 rank files; the trtllm-build double copies them and the
    trtllm-serve double serves them dequantized (tests/doubles/README.md): no FP8 GEMM ran anywhere."""
    use_doubles(monkeypatch)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    quantize = "quantize:\n  format: fp8\n  calibration: {samples: 4, eval_samples: 4, seq_len: 32, batch_size: 4}\n"
    validate = ("validate:\n  requests: 4\n  concurrency: 2\n  warmup_requests: 1\n  max_tokens: 8\n"
                "  gates: {max_error_rate: 0, min_token_agreement: 0.5}\n")
    text = trtllm_recipe(tiny_model_dir, "trtllm-engine", "trtllm-engine-fp8", parallel="parallel:\n  tensor: 2\n",
                         quantize=quantize, validate=validate, tracking="tracking:\n  register_model: false\n")

    summary = run_flow(text, tmp_path / "store")

    assert statuses(summary) == {"download": "ran", "quantize": "ran", "shard": "ran", "build": "ran",
                                 "validate": "ran", "package": "skipped", "register": "skipped"}
    assert stage(summary, "shard")["outputs"]["quantization"]["quant_algo"] == "FP8"
    validated = stage(summary, "validate")
    argv = validated["outputs"]["server_argv"]
    assert argv[0] == "trtllm-serve" and argv[argv.index("--backend") + 1] == "tensorrt"
    server_log = (Path(validated["path"]) / validated["outputs"]["server_log"]).read_text()
    assert "rank1.engine: FP8 weights dequantized to float16" in server_log  # served from the rank files' codes
    figures = summary["figures"]
    assert figures["completed"] == 4 and figures["errors"] == 0 and figures["output_tokens_per_s"] > 0
    # Greedy decodes of the FP8 weights against the reference (the fake-quantized checkpoint) in-process;
    # measured 0.72 on the tiny random model, whose near-uniform logits let one rounding flip a token.
    assert figures["token_agreement"] >= 0.5
    accuracy = json.loads((Path(validated["path"]) / validated["outputs"]["accuracy"]).read_text())
    assert len(accuracy["prompts"]) == 3  # every prompt of the recipe decoded both ways
    run = MlflowClient(mlflow_uri).get_run(summary["mlflow"]["run_id"])
    assert run.data.tags["gates"] == "passed" and run.data.tags["engineforge.quantize.format"] == "fp8"
