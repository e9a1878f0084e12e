"""A `sweep.curated` sweep through the real sweep flow (Prefect, MLflow, load generator) with the TensorRT-LLM TEST
DOUBLES (tests/doubles): a curated config from a fixture in the directory shape of TensorRT-LLM's examples/configs
(written here, invented values) is measured beside the recipe's own layout. TensorRT-LLM itself is NOT executed: the
trtllm-serve double checks the options file against the version's definitions and serves with transformers."""

from pathlib import Path

import pytest
import yaml
from conftest import recipe_text
from trtllm_helpers import use_doubles

from flows.sweep import sweep

pytestmark = pytest.mark.integration

MODEL = "example-org/Tiny-Llama"


@pytest.fixture
def gpu_slots_declared(prefect_api, monkeypatch, tmp_path):
    """This host's GPU concurrency limit, as `engineforge worker` declares it (TensorRT-LLM builds take slots)."""
    from engineforge.orchestration import gpu_slots

    monkeypatch.setenv(gpu_slots.LIMIT_ENV, f"gpu-curated-test-{tmp_path.name}")
    monkeypatch.setenv("ENGINEFORGE_GPU_LOCK_DIR", str(tmp_path / "gpu-locks"))
    gpu_slots.declare_limit(2)


def test_a_curated_config_is_measured_beside_the_layout_with_trtllm_doubles(
    prefect_api, gpu_slots_declared, tiny_model_dir, mlflow_uri, monkeypatch, no_docker, tmp_path
):
    use_doubles(monkeypatch)
    configs = tmp_path / "configs"
    (configs / "curated").mkdir(parents=True)
    (configs / "curated" / "lookup.yaml").write_text(yaml.safe_dump([
        {"model": MODEL, "arch": "LlamaForCausalLM", "config_path": "examples/configs/curated/tiny.yaml",
         "scenario": "Max Throughput", "gpu_compatibility": "Any"}]))
    (configs / "curated" / "tiny.yaml").write_text(yaml.safe_dump({
        "max_batch_size": 2, "stream_interval": 2, "enable_chunked_prefill": True,
        "cuda_graph_config": {"enable_padding": True, "max_batch_size": 2}, "kv_cache_config": {"enable_block_reuse": False}}))
    curated = f"sweep:\n  repeats: 1\n  layouts:\n    - {{tensor: 1}}\n  curated:\n    configs: configs\n    gpu: H200\n    model: {MODEL}\n"
    text = recipe_text(str(tiny_model_dir), name="curated-flow-test", tracking=f"tracking:\n  uri: {mlflow_uri}\n",
                       build="build:\n  max_batch_size: 4\n  max_input_len: 64\n  max_seq_len: 128\n", sweep=curated)
    text = text.replace("runtime: transformers", "runtime: trtllm")

    summary = sweep(recipe_yaml=text, recipe_origin="curated.yaml", base_dir=str(tmp_path),
                    store_root=str(tmp_path / "store"))

    measured = {variant["variant"]: variant for variant in summary["variants"]}
    assert set(measured) == {"tp1", "curated-tiny"}
    for name, variant in measured.items():
        assert variant["stages"]["validate"] == "ran", name
    assert "curated-tiny" in summary["table"] and "tp1" in summary["table"]
    options = [yaml.safe_load(p.read_text()) for p in Path(tmp_path / "store").rglob("extra_llm_api_options.yaml")]
    assert any(o.get("stream_interval") == 2 and o["max_batch_size"] == 2 for o in options)
