"""The LLM API options file that `trtllm-serve --config FILE` (`--extra_llm_api_options` on 1.2.x) and
`trtllm-bench` load, for one aggregated server or each role of a disaggregated deployment.

Field names are TorchLlmArgs fields (tensorrt_llm/llmapi/llm_args.py; extras forbidden): top-level
`max_batch_size`, `max_input_len`, `max_seq_len`, `max_num_tokens`, `dtype`, `kv_cache_config`
{`free_gpu_memory_fraction`, `dtype`}, then the recipe's `trtllm.llm_api` (trtllm-facts.md,
"trtllm-serve"). Parallel sizes stay on the command line (`--tp_size` ...), never in both places.
Disaggregated roles add `cache_transceiver_config` {`backend`, `max_tokens_in_buffer`}, and context
servers `disable_overlap_scheduler: true` (examples/disaggregated/README.md).
"""

from __future__ import annotations

from typing import Any

from engineforge.errors import UserError
from engineforge.recipe.schema import Recipe

OPTIONS_FILE = "extra_llm_api_options.yaml"
ROLES = ("context", "generation")
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
    return merged(options, recipe.trtllm.options() if recipe.trtllm else {})


def options_file(role: str) -> str:
    return f"{role}_options.yaml"


def role_options(recipe: Recipe, role: str) -> dict[str, Any]:
    """One disaggregated role's options: the aggregated ones plus the KV cache transfer."""
    spec = recipe.serve.disaggregated
    options = llm_api_options(recipe)
    if role == "context":
        options["disable_overlap_scheduler"] = True
    options["cache_transceiver_config"] = {
        "backend": spec.cache_transceiver_backend,
        "max_tokens_in_buffer": spec.max_tokens_in_buffer or recipe.build.max_seq_len,
    }
    return options


def emitted_options(recipe: Recipe) -> dict[str, dict[str, Any]]:
    """{file name: options} of every options file a TensorRT-LLM recipe writes (what the checks read)."""
    files = {OPTIONS_FILE: llm_api_options(recipe)}
    if recipe.serve.disaggregated is not None:
        files |= {options_file(role): role_options(recipe, role) for role in ROLES}
    return files


def kv_cache_config(recipe: Recipe) -> dict[str, Any]:
    config: dict[str, Any] = {"free_gpu_memory_fraction": recipe.serve.kv_cache_free_gpu_memory_fraction}
    dtype = recipe.build.kv_cache_dtype
    if dtype not in PYTORCH_KV_CACHE_DTYPES:
        raise UserError(f"build.kv_cache_dtype {dtype}: the PyTorch backend (runtime trtllm) takes only "
                        f"{' or '.join(PYTORCH_KV_CACHE_DTYPES)}; the KV cache otherwise follows the model dtype")
    if dtype != "auto":
        config["dtype"] = dtype
    return config


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` over `base`, nested mappings merged key by key (kv_cache_config keeps its fraction)."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
