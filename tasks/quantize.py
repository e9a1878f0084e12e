from engineforge import tracking
from engineforge.errors import StageFailed
from engineforge.mlflow_tags import (
    QUANTIZE_CALIBRATION_SHA256_TAG,
    QUANTIZE_FORMAT_TAG,
    QUANTIZE_GATES_TAG,
    QUANTIZE_KV_CACHE_TAG,
    QUANTIZE_MODELOPT_VERSION_TAG,
)
from engineforge.recipe import Recipe
from engineforge.stage_result import StageResult
from engineforge.stages.context import RunContext
from engineforge.stages.quantize import quantize, quantize_key
from engineforge.stages.record import record_stage
from tasks.common import stage_task


def record_quantize(recipe: Recipe, ctx: RunContext, result: StageResult) -> None:
    """Accuracy figures, the export's quantization config and what calibrated it; then the gates."""
    record_stage(ctx, result)
    out = result.outputs
    figures = {f"quantize_{name}": value for name, value in out["figures"].items()}
    tracking.log_metrics(ctx.tracking_uri, ctx.run_id, {**figures, "quantize_calibration_s": out["calibration_s"]})
    tracking.log_file(ctx.tracking_uri, ctx.run_id, result.file("accuracy"), "quantize")
    tracking.log_file(ctx.tracking_uri, ctx.run_id, result.file("export_dir") / "hf_quant_config.json", "quantize")
    tracking.set_tags(ctx.tracking_uri, ctx.run_id, {
        QUANTIZE_FORMAT_TAG: out["format"], QUANTIZE_KV_CACHE_TAG: out["kv_cache"],
        QUANTIZE_MODELOPT_VERSION_TAG: str(out["modelopt_version"]),
        QUANTIZE_CALIBRATION_SHA256_TAG: out["calibration_sha256"],
    })
    from engineforge.quantize.accuracy import AccuracyFigures

    failures = AccuracyFigures(**out["figures"]).failures(recipe.quantize.gates)
    tracking.set_tags(ctx.tracking_uri, ctx.run_id, {QUANTIZE_GATES_TAG: "failed" if failures else "passed"})
    if failures:
        raise StageFailed("quantize", "accuracy gate failed: " + "; ".join(failures))


@stage_task("quantize", key=quantize_key, record=record_quantize)
def quantize_task(recipe: Recipe, model: StageResult, ctx: RunContext, key: str) -> StageResult:
    return quantize(recipe, model, ctx, key)
