"""The TensorRT-LLM runtimes' build keys (issue 23): the PyTorch build writes its options files and
serve argv from the recipe, so they enter its key; an engine holds no serve setting, so they stay out.
Keys only: no TensorRT-LLM command is started (it cannot be installed here)."""

import pytest

from engineforge.recipe.file import parse_recipe
from engineforge.runtimes import get_runtime
from engineforge.stage_result import StageResult
from engineforge.stages.build import build_key

MODEL = StageResult(stage="download", status="ran", key="m" * 64, outputs={})
DISAGG = ("serve:\n  disaggregated:\n    context:\n      instances: 1\n      tp: 1\n    generation:\n"
          "      instances: 1\n      tp: 1\n    cache_transceiver_backend: {backend}\n")


def key(runtime, extra=""):
    parsed = parse_recipe(f"name: k\nmodel:\n  source: synthetic:tiny-llama\nruntime: {runtime}\n{extra}", "r.yaml")
    return build_key(parsed, MODEL, get_runtime(runtime))


@pytest.mark.parametrize("serve", ["serve:\n  kv_cache_free_gpu_memory_fraction: 0.5\n", "serve:\n  port: 9000\n"])
def test_a_serve_value_the_pytorch_build_writes_changes_its_key_and_not_the_transformers_key(serve):
    assert key("trtllm", serve) != key("trtllm")
    assert key("transformers", serve) == key("transformers")


def test_the_disaggregated_settings_enter_the_pytorch_key():
    assert key("trtllm", DISAGG.format(backend="UCX")) != key("trtllm", DISAGG.format(backend="NIXL"))


def test_a_serve_value_the_pytorch_build_does_not_write_leaves_its_key():
    assert key("trtllm", "serve:\n  startup_timeout_s: 30\n") == key("trtllm")


@pytest.mark.parametrize("serve", ["serve:\n  port: 9000\n", "serve:\n  kv_cache_free_gpu_memory_fraction: 0.5\n"])
def test_an_engine_is_not_rebuilt_for_a_serve_change(serve):
    assert key("trtllm-engine", serve) == key("trtllm-engine")


def test_an_engine_key_still_follows_the_build_and_the_trtllm_section():
    assert key("trtllm-engine", "build:\n  max_batch_size: 4\n") != key("trtllm-engine")
    assert key("trtllm-engine", "trtllm:\n  llm_api:\n    enable_chunked_prefill: true\n") != key("trtllm-engine")
