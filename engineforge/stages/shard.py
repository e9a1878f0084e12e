"""shard: split a Hugging Face checkpoint into a TensorRT-LLM checkpoint (engineforge's streamed sharder).

Runtimes that build TensorRT-LLM engines list this stage; it needs no TensorRT-LLM itself. A quantized
model (the quantize stage's result) is written by ModelOpt's TensorRT-LLM export instead, which carries
the calibrated scales into the rank files (engineforge.quantize.rank_files).
"""

from __future__ import annotations

import os
from pathlib import Path

from engineforge.stages import progress
from engineforge.recipe.parallel_layout import ParallelLayout
from engineforge.recipe.schema import Recipe
from engineforge.stages.run_stage import run_stage
from engineforge.stage_result import StageOutput, StageResult
from engineforge.stages.context import RunContext
from engineforge.stages.stage import Stage
from engineforge.artifacts.store import content_key
from engineforge.versions import package_version

STAGE = "shard"
CHECKPOINT = "checkpoint"  # the TensorRT-LLM checkpoint's directory inside the stage's entry


def _quantized(model: StageResult) -> bool:
    return model.stage == "quantize"


def shard_key(recipe: Recipe, model: StageResult) -> str:
    """What determines the rank files: the source, the layout, the dtype and the sharder's own code
    (and ModelOpt's, which writes a quantized model's)."""
    writer = [package_version("nvidia-modelopt")] if _quantized(model) else []
    layout = ParallelLayout.of(recipe.parallel)._asdict()  # a mapping, as always: the keys stay the same
    return content_key(STAGE, model.key, layout, recipe.model.dtype, package_version("engineforge"), *writer)


def shard(recipe: Recipe, model: StageResult, ctx: RunContext, key: str) -> StageResult:
    layout = ParallelLayout.of(recipe.parallel)
    # The Hugging Face side the build keeps (tokenizer, reference model): for a quantized model the
    # fake-quantized checkpoint, whose weights plain transformers reads as they were (not ModelOpt's codes).
    hf_dir = model.file("fakequant_dir") if _quantized(model) else model.file("model_dir")

    def produce(workdir: Path) -> StageOutput:
        if _quantized(model):
            from engineforge.quantize.rank_files import export_rank_files

            report = export_rank_files(hf_dir, workdir / CHECKPOINT, layout.tp, layout.pp, recipe.model.dtype)
        else:
            from engineforge.checkpoint import shard_checkpoint

            report = shard_checkpoint(hf_dir, workdir / CHECKPOINT, **layout._asdict(), dtype=recipe.model.dtype,
                                      workers=min(os.cpu_count() or 1, layout.world_size),
                                      progress=lambda done, total: progress.advanced(STAGE, done / total))
        return StageOutput(
            summary=(f"{report.architecture} tp{report.tp} pp{report.pp} ep{report.ep} {report.dtype}: "
                     f"{len(report.files)} rank files, {report.output_bytes / 1e9:.2f} GB"),
            outputs={"checkpoint_dir": CHECKPOINT, "hf_dir": str(hf_dir), "architecture": report.architecture,
                     "world_size": layout.world_size, "dtype": report.dtype, "quantization": report.config["quantization"],
                     "files": {f.name: f.size_bytes for f in report.files}},
        )

    return run_stage(ctx.store, STAGE, key, produce, ctx.refreshes(STAGE))


SHARD = Stage(
    name=STAGE,
    key=lambda recipe, ctx, model: shard_key(recipe, model),
    work=lambda recipe, ctx, key, model: shard(recipe, model, ctx, key),
    plan=lambda recipe, runtime, plans: plans[STAGE],
)
