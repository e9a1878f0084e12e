"""build: turn the downloaded (or sharded) checkpoint into what the runtime serves."""

from __future__ import annotations

from pathlib import Path

from engineforge.recipe import Recipe
from engineforge.runtimes.base import BUILD_LOG, Runtime
from engineforge.stage import run_stage
from engineforge.stage_result import StageResult
from engineforge.stages.context import RunContext
from engineforge.store import content_key, tree_bytes

STAGE = "build"


def build_key(recipe: Recipe, model: StageResult, runtime: Runtime) -> str:
    """What determines the built output."""
    return content_key(
        STAGE, runtime.name, model.key, recipe.section("build"), recipe.section("parallel"),
        recipe.model.dtype, runtime.key_versions(), *runtime.build_key_inputs(recipe),
    )


def build(recipe: Recipe, model: StageResult, ctx: RunContext, key: str) -> StageResult:
    # The built output is about the size of its input (a copy, or an engine of the same weights):
    # checked against the free space before anything is written.
    source = model.file("model_dir") if "model_dir" in model.outputs else Path(model.path or ".")
    return run_stage(
        ctx.store, STAGE, key, lambda workdir: ctx.runtime.build(recipe, model, workdir), ctx.refreshes(STAGE),
        keep_on_failure=(BUILD_LOG,), needed_bytes=tree_bytes(source),
    )
