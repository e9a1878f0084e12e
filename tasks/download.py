from engineforge.recipe import Recipe
from engineforge.stage_result import StageResult
from engineforge.stages.context import RunContext
from engineforge.stages.download import download
from engineforge.stages.record import record_stage
from tasks.common import stage_task


# No key before it runs: a download's key is the content it finds (the hub's commit, the files' hashes).
@stage_task("download", retries=3, retry_delay_seconds=[5, 30, 120],  # the hub and mirrors fail transiently
            record=lambda recipe, ctx, result: record_stage(ctx, result))
def download_task(recipe: Recipe, ctx: RunContext) -> StageResult:
    return download(recipe, ctx)
