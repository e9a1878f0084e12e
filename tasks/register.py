from engineforge.recipe import Recipe
from engineforge.stage_result import StageResult
from engineforge.stages.context import RunContext
from engineforge.stages.record import record_stage
from engineforge.stages.register import register
from tasks.common import stage_task


@stage_task("register", retries=2, retry_delay_seconds=[5, 30],  # a remote tracking server may blink
            record=lambda recipe, ctx, result: record_stage(ctx, result))
def register_task(
    recipe: Recipe, built: StageResult, packaged: StageResult | None, model: StageResult, ctx: RunContext
) -> StageResult:
    return register(recipe, built, packaged, model, ctx)
