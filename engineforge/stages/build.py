"""build: turn the downloaded (or sharded) checkpoint into what the runtime serves."""

from __future__ import annotations

from pathlib import Path

from engineforge.recipe.schema import Recipe
from engineforge.runtimes.base import BUILD_LOG, Runtime
from engineforge.stages.run_stage import run_stage
from engineforge.stage_result import StageResult
from engineforge.stages.context import RunContext
from engineforge.stages.record import record_stage
from engineforge.stages.stage import Stage
from engineforge.artifacts.store import content_key, tree_bytes

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


def record(recipe: Recipe, ctx: RunContext, result: StageResult) -> None:
    record_stage(ctx, result)
    if "build_log" in result.outputs:
        ctx.mlflow_run.log_file(result.file("build_log"), STAGE)


BUILD = Stage(
    name=STAGE,
    key=lambda recipe, ctx, model: build_key(recipe, model, ctx.runtime),
    work=lambda recipe, ctx, key, model: build(recipe, model, ctx, key),
    record=record,
    plan=lambda recipe, runtime, plans: plans[STAGE],
    gpus=lambda recipe, runtime: recipe.parallel.gpus if runtime.builds_on_gpu else 0,
    timeout_s=lambda recipe: recipe.build.timeout_s,
)
