from engineforge import tracking
from engineforge.recipe import Recipe
from engineforge.run_context import RunContext
from engineforge.stage import StageResult
from engineforge.stages.build import build, failure_log
from engineforge.stages.record import record_stage
from tasks.common import stage_task


@stage_task("build")
def build_task(recipe: Recipe, model: StageResult, ctx: RunContext) -> StageResult:
    log = failure_log(ctx.store)
    log.unlink(missing_ok=True)
    try:
        result = build(recipe, model, ctx.store, ctx.refreshes("build"))
    except Exception:
        if log.exists():  # the build tool's own words are the best clue to a failed build
            tracking.log_file(ctx.tracking_uri, ctx.run_id, log, "build")
        raise
    record_stage(ctx, result)
    if "build_log" in result.outputs:
        tracking.log_file(ctx.tracking_uri, ctx.run_id, result.file("build_log"), "build")
    return result
