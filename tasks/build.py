from engineforge import tracking
from engineforge.recipe import Recipe
from engineforge.run_context import RunContext
from engineforge.stage import StageResult
from engineforge.stages.build import build
from engineforge.stages.record import record_stage
from tasks.common import stage_task


@stage_task("build")
def build_task(recipe: Recipe, model: StageResult, ctx: RunContext) -> StageResult:
    result = build(recipe, model, ctx.store, ctx.refreshes("build"))
    record_stage(ctx, result)
    if "build_log" in result.outputs:
        tracking.log_file(ctx.tracking_uri, ctx.run_id, result.file("build_log"), "build")
    return result
