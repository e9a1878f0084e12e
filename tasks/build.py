from engineforge import tracking
from engineforge.recipe import Recipe
from engineforge.stage_result import StageResult
from engineforge.stages.build import build, build_key
from engineforge.stages.context import RunContext
from engineforge.stages.record import record_stage
from tasks.common import stage_task


def record_build(recipe: Recipe, ctx: RunContext, result: StageResult) -> None:
    record_stage(ctx, result)
    if "build_log" in result.outputs:
        tracking.log_file(ctx.tracking_uri, ctx.run_id, result.file("build_log"), "build")


@stage_task("build", key=build_key, record=record_build)
def build_task(recipe: Recipe, model: StageResult, ctx: RunContext, key: str) -> StageResult:
    return build(recipe, model, ctx, key)
