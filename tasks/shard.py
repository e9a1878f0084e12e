from engineforge.recipe import Recipe
from engineforge.run_context import RunContext
from engineforge.stage import StageResult
from engineforge.stages.record import record_stage
from engineforge.stages.shard import shard
from tasks.common import stage_task


@stage_task("shard")
def shard_task(recipe: Recipe, model: StageResult, ctx: RunContext) -> StageResult:
    result = shard(recipe, model, ctx.store, ctx.refreshes("shard"))
    record_stage(ctx, result)
    return result
