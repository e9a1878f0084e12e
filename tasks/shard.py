from engineforge.recipe import Recipe
from engineforge.stage_result import StageResult
from engineforge.stages.context import RunContext
from engineforge.stages.record import record_stage
from engineforge.stages.shard import shard, shard_key
from tasks.common import stage_task


@stage_task("shard", key=shard_key, record=lambda recipe, ctx, result: record_stage(ctx, result))
def shard_task(recipe: Recipe, model: StageResult, ctx: RunContext, key: str) -> StageResult:
    return shard(recipe, model, ctx, key)
