"""build: turn the downloaded (or sharded) checkpoint into what the runtime serves."""

from __future__ import annotations

from engineforge.recipe import Recipe
from engineforge.runtimes.base import BUILD_LOG, Runtime
from engineforge.stage import run_stage
from engineforge.stage_result import StageResult
from engineforge.stages.context import RunContext
from engineforge.store import content_key

STAGE = "build"


def build_key(recipe: Recipe, model: StageResult, runtime: Runtime) -> str:
    """What determines the built output (also its Prefect cache key)."""
    return content_key(
        STAGE, runtime.name, model.key, recipe.section("build"), recipe.section("parallel"),
        recipe.model.dtype, runtime.key_versions(),
    )


def build(recipe: Recipe, model: StageResult, ctx: RunContext, key: str) -> StageResult:
    return run_stage(
        ctx.store, STAGE, key, lambda workdir: ctx.runtime.build(recipe, model, workdir), ctx.refreshes(STAGE),
        keep_on_failure=(BUILD_LOG,),
    )
