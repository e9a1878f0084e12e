"""Runtime `trtllm-engine`: TensorRT engines, the legacy path of TensorRT-LLM 1.2.x. Later versions have no
trtllm-build (docs/source/legacy/tensorrt-backend-removal.md): the recipe refuses this runtime for them.

shard: engineforge's streamed sharder writes a TensorRT-LLM checkpoint (config.json + one
rank{N}.safetensors per rank) for the recipe's layout; for a quantized recipe ModelOpt's TensorRT-LLM
export writes it, scales included (engineforge.quantize.rank_files). build: `trtllm-build` compiles it, its log
kept; the engine directory is checked for config.json and exactly one rank{N}.engine per rank.
The served directory keeps the engine apart from the tokenizer (a tokenizer must not read the
engine's config.json as a model config):

    served/engine/      config.json, rank0.engine ...
    served/tokenizer/   the Hugging Face config, tokenizer and generation files (no weights)
"""

from __future__ import annotations

import re
from pathlib import Path

from engineforge.recipe.parallel_layout import ParallelLayout
from engineforge.errors import UserError
from engineforge.gpus import gpu_info
from engineforge.recipe.schema import Recipe
from engineforge.runtimes.base import BUILD_LOG
from engineforge.runtimes.transformers import servable_model
from engineforge.runtimes.trtllm import build as trtllm_build
from engineforge.runtimes.trtllm.base import SERVED, TrtllmRuntimeBase, target_notes
from engineforge.runtimes.trtllm.launch import launched
from engineforge.runtimes.trtllm.serve import engine_serve_argv
from engineforge.stage_plan import Command, StagePlan
from engineforge.stage_result import StageOutput, StageResult
from engineforge.artifacts.store import clone_file

CHECKPOINT = "checkpoint"
ENGINE = f"{SERVED}/engine"
TOKENIZER = f"{SERVED}/tokenizer"
# Weights stay out of the tokenizer directory (the engine holds them).
WEIGHT_FILES = re.compile(r".*\.(safetensors|bin|pt|pth|gguf|h5|msgpack)$|.*\.index\.json$")


def visible_gpus() -> int:
    return int(gpu_info()["gpu_count"] or 0)


class TrtllmEngineRuntime(TrtllmRuntimeBase):
    name = "trtllm-engine"
    stages = frozenset({"download", "shard", "build", "validate", "package", "register"})
    build_commands = (trtllm_build.BUILD,)

    def skip_reason(self, stage: str) -> str:
        return f"not used by the {self.name} runtime"

    def build(self, recipe: Recipe, source: StageResult, workdir: Path) -> StageOutput:
        self.require("build", [trtllm_build.BUILD])
        hf_dir = Path(source.outputs["hf_dir"])
        tokenizer_dir = workdir / TOKENIZER
        _link_tokenizer(hf_dir, tokenizer_dir)
        architecture, _ = servable_model(tokenizer_dir, hf_dir)
        world_size = ParallelLayout.of(recipe.parallel).world_size
        argv = self.build_argv(recipe, str(source.file("checkpoint_dir")), str(workdir / ENGINE), visible_gpus())
        trtllm_build.run_build(argv, workdir / BUILD_LOG, recipe.build.timeout_s)
        config = trtllm_build.check_engine_dir(workdir / ENGINE, world_size)
        version = str(config["version"])
        return StageOutput(
            summary=f"{world_size} engine(s) for {architecture}, TensorRT-LLM {version}",
            outputs={"served_dir": SERVED, "engine_dir": ENGINE, "tokenizer_dir": TOKENIZER, "build_log": BUILD_LOG,
                     "reference_dir": str(hf_dir),
                     "architecture": architecture, "tensorrt_llm_version": version, "trtllm_build_argv": argv},
        )  # no serve argv: serve settings stay out of an engine's key, so package and dry run take it from the recipe

    def build_argv(self, recipe: Recipe, checkpoint_dir: str, engine_dir: str, gpus: int) -> list[str]:
        workers = trtllm_build.workers(ParallelLayout.of(recipe.parallel).world_size, gpus)
        return trtllm_build.build_argv(recipe.build, checkpoint_dir, engine_dir, workers)

    def serve_argv(self, recipe: Recipe, served_dir: Path, host: str, port: int | str, device: str) -> list[str]:
        argv = engine_serve_argv(recipe, f"{served_dir}/engine", f"{served_dir}/tokenizer", host, port)
        return launched(argv, ParallelLayout.of(recipe.parallel), recipe.parallel.gpus_per_node)

    def bench_model(self, served_dir: str) -> dict[str, str]:
        return {"model_path": f"{served_dir}/tokenizer", "engine_dir": f"{served_dir}/engine"}

    def dry_run(self, recipe: Recipe) -> dict[str, StagePlan]:
        from engineforge.processes.serving import LOOPBACK
        from engineforge.stage_plan import (
            BUILD_DIR,
            DOWNLOAD_DIR,
            PORT,
            SHARD_DIR,
            VALIDATE_DIR,
            merge,
        )

        layout = ParallelLayout.of(recipe.parallel)
        checkpoint = f"{SHARD_DIR}/{CHECKPOINT}"
        hf_dir = DOWNLOAD_DIR
        sharder = (f"engineforge.checkpoint.shard_checkpoint({hf_dir}, {checkpoint}, tp={layout.tp}, "
                   f"pp={layout.pp}, ep={layout.ep}, dtype={recipe.model.dtype})")
        if recipe.quantize is not None:  # the scales go with the weights: ModelOpt writes the rank files
            hf_dir = "<quantize>/fakequant"
            sharder = (f"modelopt.torch.export.export_tensorrt_llm_checkpoint({hf_dir}, {checkpoint}, "
                       f"inference_tensor_parallel={layout.tp}, inference_pipeline_parallel={layout.pp})")
        shard = StagePlan(stage="shard", notes={
            "sharder": sharder,
            "writes": [f"{checkpoint}/config.json", *(f"{checkpoint}/rank{r}.safetensors" for r in range(layout.world_size))],
        })
        argv = self.build_argv(recipe, checkpoint, f"{BUILD_DIR}/{ENGINE}", visible_gpus())
        build = StagePlan(stage="build", commands=[Command(role="build", argv=argv)], notes={
            "log": f"{BUILD_DIR}/{BUILD_LOG}", **target_notes(recipe),
            "checks": [f"{BUILD_DIR}/{ENGINE}/config.json",
                       *(f"{BUILD_DIR}/{ENGINE}/rank{r}.engine" for r in range(layout.world_size))],
            "tokenizer": f"{BUILD_DIR}/{TOKENIZER} -> {hf_dir} (without weights)",
        })
        served = f"{BUILD_DIR}/{SERVED}"
        validate = merge(self.serve_plan(recipe, served, LOOPBACK, PORT, "cuda", VALIDATE_DIR),
                         self.bench_plan(recipe, served, VALIDATE_DIR))
        return {"shard": shard, "build": build, "validate": validate}


def _link_tokenizer(hf_dir: Path, target: Path) -> None:
    """Clone the model's top-level files but its weights (the engine holds them)."""
    target.mkdir(parents=True)
    for path in sorted(hf_dir.iterdir()):
        if path.is_file() and not WEIGHT_FILES.fullmatch(path.name):
            clone_file(path, target / path.name)
    if not any(target.iterdir()):
        raise UserError(f"{hf_dir}: no tokenizer or config files to serve the engine with")
