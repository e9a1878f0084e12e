from engineforge.recipe import Recipe
from engineforge.run_context import RunContext
from engineforge.stage_result import StageResult
from engineforge.stages.record import record_stage
from engineforge.stages.shard import shard
from tasks.common import stage_task


# The runtime keys its shard (the store reuses it); Prefect does not cache this task.
@stage_task("shard", record=lambda recipe, ctx, result: record_stage(ctx, result))
def shard_task(recipe: Recipe, model: StageResult, ctx: RunContext) -> StageResult:
    return shard(recipe, model, ctx.store, ctx.refreshes("shard"))
