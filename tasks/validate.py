import tempfile
from pathlib import Path

from engineforge import tracking
from engineforge.measure import intervals
from engineforge.measure.gates import evaluate_gates, judged_figures
from engineforge.measure.intervals import CI_SUFFIX, REPEATS_METRIC
from engineforge.mlflow_tags import CACHE_HIT_TAG, MEASURED_BY_TAG, MEASURED_TAG, missing
from engineforge.orchestration import run_artifacts
from engineforge.recipe import Recipe
from engineforge.stage_result import StageResult
from engineforge.stages.context import RunContext
from engineforge.stages.record import record_stage
from engineforge.stages.validate import validate, validate_key
from tasks.common import stage_task



def record_validation(recipe: Recipe, ctx: RunContext, result: StageResult) -> None:
    """Figures, files and the gates' verdict (gates judge the figures every run, cached or not)."""
    if result.status == "skipped":
        return
    # Repeated figures are gated on the pessimistic end of their 95 % interval (gates.judged_figures).
    repeats = result.outputs.get("repeat_figures", [])
    report = evaluate_gates(recipe.validate_.gates, judged_figures(result.outputs["figures"], repeats),
                            result.outputs.get("missing"))
    record_stage(ctx, result if report.passed else result.model_copy(update={"status": "failed"}))
    _record_figures(recipe, ctx, result)
    for name in ("results", "server_log", "accuracy", "latency_cdf"):
        if name in result.outputs:
            tracking.log_file(ctx.tracking_uri, ctx.run_id, result.file(name), "validate")
    _check_gates(report, ctx, _bounds_line(report, repeats))


def _record_figures(recipe: Recipe, ctx: RunContext, result: StageResult) -> None:
    """Figures measured by this run become its metrics; a result reused from the store or a remote
    tier was measured by another run, so this one is tagged a cache hit pointing at that run
    instead of logging the same figures again as new measurements. The table is shown either way."""
    figures = result.outputs["figures"]
    if result.status == "ran":
        _log_figures(ctx, figures, result.outputs.get("repeat_figures", []))
        missing_figures = {missing(name): reason for name, reason in result.outputs.get("missing", {}).items()}
        tracking.set_tags(ctx.tracking_uri, ctx.run_id, {MEASURED_TAG: result.key} | missing_figures)
    else:
        measured = tracking.run_with_tag(ctx.tracking_uri, tracking.experiment_name(recipe), MEASURED_TAG, result.key)
        tags = {CACHE_HIT_TAG: "true"} | ({MEASURED_BY_TAG: measured.info.run_id} if measured else {})
        tracking.set_tags(ctx.tracking_uri, ctx.run_id, tags)
    rows = run_artifacts.validation_rows(figures, recipe.validate_.gates, result.outputs.get("missing"),
                                         result.outputs.get("repeat_figures", []))
    if rows:
        tracking.log_table(ctx.tracking_uri, ctx.run_id, rows, "validate/figures.json")


def _log_figures(ctx: RunContext, means: dict[str, float], repeats: list[dict[str, float]]) -> None:
    """Each repeat's figures at steps 0..n-1, then their means at step n (what the run shows as the figure),
    `<figure>_ci95` (the 95 % interval's half width, where two or more repeats measured it) and `validate_repeats`."""
    for step, figures in enumerate(repeats):
        tracking.log_metrics(ctx.tracking_uri, ctx.run_id, figures, step=step)
    widths = {f"{name}{CI_SUFFIX}": stats.half_width for name, stats in intervals.combine(repeats).items()
              if stats.half_width is not None}
    extra = widths | {REPEATS_METRIC: len(repeats)} if repeats else {}
    tracking.log_metrics(ctx.tracking_uri, ctx.run_id, means | extra, step=len(repeats))


@stage_task("validate", key=validate_key, record=record_validation)
def validate_task(recipe: Recipe, built: StageResult, ctx: RunContext, key: str) -> StageResult:
    return validate(recipe, built, ctx, key)


def _bounds_line(report, repeats: list[dict[str, float]]) -> str:
    """What the gates judged, beside the mean it bounds; empty for a single measurement."""
    if len(repeats) < 2 or not report.results:
        return ""
    stats = intervals.combine(repeats)
    shown = [f"{r.figure} {'lower' if r.op == '>=' else 'upper'} bound {r.measured:,.1f} (mean {stats[r.figure].mean:,.1f} "
             f"± {stats[r.figure].half_width:,.1f}), target {r.op} {r.target:g}"
             for r in report.results if r.measured is not None and r.figure in stats and stats[r.figure].half_width is not None]
    return f"Judged on the 95% interval over {len(repeats)} repeats: " + "; ".join(shown)


def _check_gates(report, ctx: RunContext, bounds: str = "") -> None:
    """Tag the run gates=passed|failed and log the table; a failed gate fails the stage with it."""
    tracking.set_tags(ctx.tracking_uri, ctx.run_id, {"gates": report.verdict})
    if report.results:
        with tempfile.TemporaryDirectory() as directory:
            table = Path(directory) / "gates.txt"
            table.write_text(report.to_text() + "\n" + (bounds + "\n" if bounds else ""))
            tracking.log_file(ctx.tracking_uri, ctx.run_id, table, "validate")
    report.raise_if_failed("validate")
