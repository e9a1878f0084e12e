import shutil
import tempfile
from pathlib import Path

from engineforge import tracking
from engineforge.recipe import Recipe
from engineforge.stage_result import StageResult
from engineforge.stages.context import RunContext
from engineforge.stages.package import package, package_key
from engineforge.stages.record import record_stage
from tasks.common import stage_task


def record_package(recipe: Recipe, ctx: RunContext, result: StageResult) -> None:
    record_stage(ctx, result)
    if "dockerfile" in result.outputs:  # as Dockerfile.txt: MLflow's UI previews files by their extension
        with tempfile.TemporaryDirectory() as directory:
            shown = Path(directory) / "Dockerfile.txt"
            shutil.copyfile(result.file("dockerfile"), shown)
            tracking.log_file(ctx.tracking_uri, ctx.run_id, shown, "package")


@stage_task("package", retries=1, retry_delay_seconds=[10], key=package_key, record=record_package)  # pushes blink
def package_task(
    recipe: Recipe, built: StageResult, model: StageResult, lock_sha256: str, ctx: RunContext, key: str,
    quantized: StageResult | None = None,
) -> StageResult:
    return package(recipe, built, model, lock_sha256, ctx, key, quantized)
