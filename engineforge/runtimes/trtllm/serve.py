"""`trtllm-serve` command lines (tensorrt_llm/commands/serve.py; trtllm-facts.md, "trtllm-serve").

PyTorch backend: `trtllm-serve HF_DIR --backend pytorch --tp_size T --pp_size P --ep_size E
--config FILE` (limits and KV cache settings live in FILE; `--extra_llm_api_options FILE` on 1.2.x,
engineforge/recipe/trtllm_section.py). Engine path (1.2.x only): `trtllm-serve ENGINE_DIR --backend tensorrt
--tokenizer DIR` with the engine's parallel sizes (the engine's `mapping` fixes them) and runtime
limits equal to the built ones.
"""

from __future__ import annotations

from engineforge.recipe.parallel_layout import ParallelLayout
from engineforge.recipe.schema import Recipe
from engineforge.runtimes.trtllm.files import checked_path
from engineforge.recipe.trtllm_section import trtllm_version

SERVE = "trtllm-serve"


def _common(host: str, port: int, layout: ParallelLayout) -> list[str]:
    return ["--host", host, "--port", str(port), "--tp_size", str(layout.tp), "--pp_size", str(layout.pp),
            "--ep_size", str(layout.ep)]


def pytorch_serve_argv(recipe: Recipe, model_dir: str, options_file: str, host: str, port: int,
                       layout: ParallelLayout | None = None) -> list[str]:
    argv = [SERVE, checked_path(model_dir, "model directory"), "--backend", "pytorch",
            *_common(host, port, layout or ParallelLayout.of(recipe.parallel)),
            trtllm_version(recipe.trtllm.version).serve_options_flag, checked_path(options_file, "LLM API options file")]
    if recipe.model.trust_remote_code:
        argv.append("--trust_remote_code")
    return argv


def engine_serve_argv(recipe: Recipe, engine_dir: str, tokenizer_dir: str, host: str, port: int) -> list[str]:
    build = recipe.build
    argv = [SERVE, checked_path(engine_dir, "engine directory"), "--backend", "tensorrt",
            "--tokenizer", checked_path(tokenizer_dir, "tokenizer directory"),
            *_common(host, port, ParallelLayout.of(recipe.parallel)),
            "--max_batch_size", str(build.max_batch_size)]
    if build.max_num_tokens is not None:
        argv += ["--max_num_tokens", str(build.max_num_tokens)]
    argv += ["--kv_cache_free_gpu_memory_fraction", str(recipe.serve.kv_cache_free_gpu_memory_fraction)]
    if recipe.model.trust_remote_code:
        argv.append("--trust_remote_code")
    return argv
