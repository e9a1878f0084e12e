from engineforge import tracking
from engineforge.recipe import Recipe
from engineforge.run_context import RunContext
from engineforge.stage import StageResult
from engineforge.stages.package import package
from engineforge.stages.record import record_stage
from tasks.common import stage_task


@stage_task("package", retries=1, retry_delay_seconds=[10])  # registry pushes fail transiently
def package_task(recipe: Recipe, built: StageResult, model: StageResult, lock_sha256: str, ctx: RunContext) -> StageResult:
    result = package(recipe, built, model, lock_sha256, ctx.store, ctx.refreshes("package"))
    record_stage(ctx, result)
    if "dockerfile" in result.outputs:
        tracking.log_file(ctx.tracking_uri, ctx.run_id, result.file("dockerfile"), "package")
    return result
