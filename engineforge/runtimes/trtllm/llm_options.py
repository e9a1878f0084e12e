"""The LLM API options YAML that `trtllm-serve --extra_llm_api_options FILE` (and trtllm-bench) load.

Field names are `tensorrt_llm.llmapi.LlmArgs` fields (tensorrt_llm/llmapi/llm_args.py; it forbids
unknown keys): top-level `max_batch_size`, `max_input_len`, `max_seq_len`, `max_num_tokens`, `dtype`,
and `kv_cache_config` {`free_gpu_memory_fraction`, `dtype`} (trtllm-facts.md, "trtllm-serve").
Parallel sizes stay on the command line (`--tp_size` ...), never in both places.
"""

from __future__ import annotations

from typing import Any

from engineforge.errors import UserError
from engineforge.recipe import Recipe

OPTIONS_FILE = "extra_llm_api_options.yaml"
# tensorrt_llm/_torch/pyexecutor/model_engine.py: _VALID_KV_CACHE_DTYPES = ("fp8", "auto")
PYTORCH_KV_CACHE_DTYPES = ("auto", "fp8")


def llm_api_options(recipe: Recipe) -> dict[str, Any]:
    """The options of one aggregated server (or of every disaggregated worker before its role's additions)."""
    build = recipe.build
    options: dict[str, Any] = {
        "max_batch_size": build.max_batch_size,
        "max_input_len": build.max_input_len,
        "max_seq_len": build.max_seq_len,
    }
    if build.max_num_tokens is not None:
        options["max_num_tokens"] = build.max_num_tokens
    if recipe.model.dtype != "auto":
        options["dtype"] = recipe.model.dtype
    options["kv_cache_config"] = kv_cache_config(recipe)
    return options


def kv_cache_config(recipe: Recipe) -> dict[str, Any]:
    config: dict[str, Any] = {"free_gpu_memory_fraction": recipe.serve.kv_cache_free_gpu_memory_fraction}
    dtype = recipe.build.kv_cache_dtype
    if dtype not in PYTORCH_KV_CACHE_DTYPES:
        raise UserError(f"build.kv_cache_dtype {dtype}: the PyTorch backend (runtime trtllm) takes only "
                        f"{' or '.join(PYTORCH_KV_CACHE_DTYPES)}; the KV cache otherwise follows the model dtype")
    if dtype != "auto":
        config["dtype"] = dtype
    return config
