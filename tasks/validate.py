from engineforge import tracking
from engineforge.recipe import Recipe
from engineforge.run_context import RunContext
from engineforge.stage import StageResult, skipped
from engineforge.stages.record import record_stage
from engineforge.stages.validate import failure_log, validate
from tasks.common import stage_task


@stage_task("validate")
def validate_task(recipe: Recipe, built: StageResult, ctx: RunContext) -> StageResult:
    if not recipe.validate_.enabled:
        return skipped("validate", "validate.enabled is false")
    try:
        result = validate(recipe, built, ctx.store, ctx.refreshes("validate"))
    except Exception:
        log = failure_log(ctx.store)
        if log.exists():  # the server's own words are the best clue to a failed validation
            tracking.log_file(ctx.tracking_uri, ctx.run_id, log, "validate")
        raise
    record_stage(ctx, result)
    tracking.log_metrics(ctx.tracking_uri, ctx.run_id, result.outputs["figures"])
    for name in ("results", "server_log"):
        tracking.log_file(ctx.tracking_uri, ctx.run_id, result.file(name), "validate")
    return result
