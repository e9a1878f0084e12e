"""shard: split a Hugging Face checkpoint into a TensorRT-LLM checkpoint (engineforge's streamed sharder).

Runtimes that build TensorRT-LLM engines list this stage; it needs no TensorRT-LLM itself.
"""

from __future__ import annotations

import os
from pathlib import Path

from engineforge import progress
from engineforge.recipe import Recipe
from engineforge.stage import run_stage
from engineforge.stage_result import StageOutput, StageResult
from engineforge.stages.context import RunContext
from engineforge.store import content_key
from engineforge.versions import package_version

STAGE = "shard"
CHECKPOINT = "checkpoint"  # the TensorRT-LLM checkpoint's directory inside the stage's entry


def _layout(recipe: Recipe) -> dict[str, int]:
    p = recipe.parallel
    return {"tp": int(p.tensor), "pp": int(p.pipeline), "ep": int(p.expert)}


def shard_key(recipe: Recipe, model: StageResult) -> str:
    """What determines the rank files: the source, the layout, the dtype and the sharder's own code."""
    return content_key(STAGE, model.key, _layout(recipe), recipe.model.dtype, package_version("engineforge"))


def shard(recipe: Recipe, model: StageResult, ctx: RunContext, key: str) -> StageResult:
    layout = _layout(recipe)
    hf_dir = model.file("model_dir")

    def produce(workdir: Path) -> StageOutput:
        from engineforge.checkpoint import shard_checkpoint

        world_size = layout["tp"] * layout["pp"]
        report = shard_checkpoint(hf_dir, workdir / CHECKPOINT, **layout, dtype=recipe.model.dtype,
                                  workers=min(os.cpu_count() or 1, world_size),
                                  progress=lambda done, total: progress.advanced(STAGE, done / total))
        return StageOutput(
            summary=(f"{report.architecture} tp{report.tp} pp{report.pp} ep{report.ep} {report.dtype}: "
                     f"{len(report.files)} rank files, {report.output_bytes / 1e9:.2f} GB"),
            outputs={"checkpoint_dir": CHECKPOINT, "hf_dir": str(hf_dir), "architecture": report.architecture,
                     "world_size": world_size, "dtype": report.dtype,
                     "files": {f.name: f.size_bytes for f in report.files}},
        )

    return run_stage(ctx.store, STAGE, key, produce, ctx.refreshes(STAGE))
