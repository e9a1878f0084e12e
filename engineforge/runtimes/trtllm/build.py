"""`trtllm-build`: argv from the recipe's `build:` section, a run with its log captured, and a check
of the engine directory it must leave behind.

Flags (tensorrt_llm/commands/build.py; plugin flags from tensorrt_llm/plugin/plugin.py
`cli_plugin_args` / `add_plugin_argument`): `--checkpoint_dir`, `--output_dir`, `--max_batch_size`,
`--max_input_len`, `--max_seq_len`, `--max_num_tokens`, `--workers`, `--gemm_plugin`,
`--gpt_attention_plugin` (a dtype or `disable`), `--use_paged_context_fmha`, `--multiple_profiles`
(`enable`/`disable`). No parallelism flags: the checkpoint's `mapping` fixes them.
Output: `config.json` (`version`, `pretrained_config`, `build_config`) and one `rank{N}.engine` per
rank (trtllm-facts.md, "trtllm-build").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engineforge.errors import StageFailed, UserError
from engineforge.recipe.schema import BuildSpec
from engineforge.runtimes.trtllm.files import checked_path
from engineforge.runtimes.trtllm.process import run_logged

BUILD = "trtllm-build"
# PluginConfig: gemm_plugin Literal["auto","float16","float32","bfloat16","int32","fp8","nvfp4",None];
# gpt_attention_plugin DefaultPluginDtype Literal["auto","float16","float32","bfloat16","int32",None];
# None is spelled "disable" on the command line.
PLUGIN_CHOICES = {
    "gemm_plugin": ("auto", "float16", "float32", "bfloat16", "int32", "fp8", "nvfp4", "disable"),
    "gpt_attention_plugin": ("auto", "float16", "float32", "bfloat16", "int32", "disable"),
}


def workers(world_size: int, visible_gpus: int) -> int:
    """Engines built in parallel: one per rank, at most one per visible GPU, at least one."""
    return max(1, min(world_size, visible_gpus))


def _plugin(build: BuildSpec, name: str) -> str:
    value = getattr(build, name) or "disable"
    if value not in PLUGIN_CHOICES[name]:
        raise UserError(f"build.{name} {value}: trtllm-build accepts {', '.join(PLUGIN_CHOICES[name])} (or null for disable)")
    return value


def _switch(flag: bool) -> str:
    return "enable" if flag else "disable"


def build_argv(build: BuildSpec, checkpoint_dir: str, output_dir: str, worker_count: int) -> list[str]:
    if build.kv_cache_dtype != "auto":
        raise UserError(
            f"build.kv_cache_dtype {build.kv_cache_dtype}: the engine path takes the KV cache type from the checkpoint's "
            "quantization (kv_cache_quant_algo); use auto, and quantize.kv_cache fp8 for an FP8 KV cache "
            "(the quantize stage calibrates its scales into the rank files)"
        )
    argv = [BUILD, "--checkpoint_dir", checked_path(checkpoint_dir, "checkpoint directory"),
            "--output_dir", checked_path(output_dir, "engine directory"),
            "--max_batch_size", str(build.max_batch_size), "--max_input_len", str(build.max_input_len),
            "--max_seq_len", str(build.max_seq_len)]
    if build.max_num_tokens is not None:
        argv += ["--max_num_tokens", str(build.max_num_tokens)]
    argv += ["--gemm_plugin", _plugin(build, "gemm_plugin"),
             "--gpt_attention_plugin", _plugin(build, "gpt_attention_plugin"),
             "--use_paged_context_fmha", _switch(build.use_paged_context_fmha),
             "--multiple_profiles", _switch(build.multiple_profiles),
             "--workers", str(worker_count)]
    return argv


def run_build(argv: list[str], log_path: Path, timeout_s: float) -> None:
    """Run trtllm-build with its output in `log_path` (logged to MLflow by the build task)."""
    run_logged(argv, log_path, timeout_s, "build", "build.timeout_s")


def check_engine_dir(engine_dir: Path, world_size: int) -> dict[str, Any]:
    """The engine's config.json, once config.json and exactly rank0..rank{world-1}.engine are there."""
    config_path = engine_dir / "config.json"
    try:
        config = json.loads(config_path.read_text())
    except (FileNotFoundError, json.JSONDecodeError) as error:
        raise StageFailed("build", f"{BUILD} left no readable {config_path} ({error.__class__.__name__})") from None
    absent = [key for key in ("version", "pretrained_config", "build_config") if key not in config]
    if absent:
        raise StageFailed("build", f"{config_path} lacks {', '.join(absent)}; is it an engine config?")
    expected = {f"rank{rank}.engine" for rank in range(world_size)}
    found = {path.name for path in engine_dir.glob("rank*.engine")}
    if found != expected:
        detail = ", ".join(filter(None, [
            f"missing {', '.join(sorted(expected - found))}" if expected - found else "",
            f"unexpected {', '.join(sorted(found - expected))}" if found - expected else "",
        ]))
        raise StageFailed("build", f"{engine_dir}: expected one engine per rank for world size {world_size}: {detail}")
    return config

