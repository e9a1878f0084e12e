import tempfile
from pathlib import Path

from engineforge import tracking
from engineforge.errors import StageFailed
from engineforge.measure.gates import evaluate_gates
from engineforge.recipe import Recipe
from engineforge.run_context import RunContext
from engineforge.stage import skipped
from engineforge.stage_result import StageResult
from engineforge.stages.record import record_stage
from engineforge.stages.validate import validate, validate_key
from tasks.common import stage_task


def validate_cache_key(recipe: Recipe, built: StageResult) -> str | None:
    return validate_key(recipe, built) if recipe.validate_.enabled else None


def record_validation(recipe: Recipe, ctx: RunContext, result: StageResult) -> None:
    """Figures, files and the gates' verdict (gates judge the figures every run, cached or not)."""
    if result.status == "skipped":
        return
    record_stage(ctx, result)
    tracking.log_metrics(ctx.tracking_uri, ctx.run_id, result.outputs["figures"])
    for name in ("results", "server_log", "accuracy", "latency_cdf"):
        if name in result.outputs:
            tracking.log_file(ctx.tracking_uri, ctx.run_id, result.file(name), "validate")
    _check_gates(recipe, result, ctx)


@stage_task("validate", key=validate_cache_key, record=record_validation)
def validate_task(recipe: Recipe, built: StageResult, ctx: RunContext) -> StageResult:
    if not recipe.validate_.enabled:
        return skipped("validate", "validate.enabled is false")
    return validate(recipe, built, ctx.store, ctx.refreshes("validate"))


def _check_gates(recipe: Recipe, result: StageResult, ctx: RunContext) -> None:
    """Tag the run gates=passed|failed; a failed gate fails the stage with the gate table."""
    report = evaluate_gates(recipe.validate_.gates, result.outputs["figures"])
    tracking.set_tags(ctx.tracking_uri, ctx.run_id, {"gates": "passed" if report.passed else "failed"})
    if report.results:
        with tempfile.TemporaryDirectory() as directory:
            table = Path(directory) / "gates.txt"
            table.write_text(report.to_text() + "\n")
            tracking.log_file(ctx.tracking_uri, ctx.run_id, table, "validate")
    if not report.passed:
        raise StageFailed("validate", "gates failed\n" + report.to_text())
