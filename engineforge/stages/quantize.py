"""quantize: calibrate and quantize the downloaded checkpoint with ModelOpt, measure what it cost.

Its `model_dir` output is what the runtime serves: ModelOpt's unified Hugging Face export for
TensorRT-LLM, the fake-quantized checkpoint (restored through ModelOpt) for the reference runtime.
The accuracy gates are judged by the task after every run, cached or not, so a failed gate stops
the run before build and a relaxed gate reuses the calibration.
"""

from __future__ import annotations

from pathlib import Path

from engineforge.stages import progress
from engineforge.errors import StageFailed, UserError
from engineforge.gpus import gpu_info
from engineforge.tracking.mlflow_tags import (
    QUANTIZE_CALIBRATION_SHA256_TAG,
    QUANTIZE_FORMAT_TAG,
    QUANTIZE_GATES_TAG,
    QUANTIZE_KV_CACHE_TAG,
    QUANTIZE_MODELOPT_VERSION_TAG,
)
from engineforge.recipe.schema import Recipe
from engineforge.runtimes.base import Runtime
from engineforge.stages.run_stage import run_stage
from engineforge.stage_plan import StagePlan
from engineforge.stage_result import StageOutput, StageResult
from engineforge.stages.context import RunContext
from engineforge.stages.record import record_stage
from engineforge.stages.stage import Stage
from engineforge.artifacts.store import content_key
from engineforge.versions import package_version

STAGE = "quantize"


def calibration_device() -> str:
    """On the GPU when there is one (calibration is forward passes), else the CPU."""
    return "cuda" if gpu_info()["gpu_count"] else "cpu"


def quantize_key(recipe: Recipe, model: StageResult, ctx: RunContext) -> str:
    """The source, the quantize section (gates judge afterwards), the calibration data's bytes, the
    tools whose numerics decide the result, and the device calibration runs on."""
    from engineforge.quantize.calibration import dataset_files, dataset_sha256

    spec = recipe.quantize
    measured = {k: v for k, v in recipe.section("quantize").items() if k != "gates"}
    data = dataset_sha256(dataset_files(spec.calibration, Path(ctx.base_dir) if ctx.base_dir else None))
    return content_key(STAGE, model.key, measured, data, recipe.model.dtype, recipe.runtime,
                       package_version("nvidia-modelopt"), package_version("torch"), package_version("transformers"),
                       package_version("engineforge"), calibration_device(), gpu_info()["gpu_name"])


def quantize(recipe: Recipe, model: StageResult, ctx: RunContext, key: str) -> StageResult:
    spec = recipe.quantize
    source_dir = model.file("model_dir")

    def produce(workdir: Path) -> StageOutput:
        from engineforge.quantize.ptq import quantize_model

        device = calibration_device()
        report = quantize_model(
            source_dir, spec, workdir, device=device, dtype=recipe.model.dtype,
            base_dir=Path(ctx.base_dir) if ctx.base_dir else None,
            on_progress=lambda done, total: progress.advanced(STAGE, done / total),
            # A runtime with a shard stage splits the result into rank files (engineforge.quantize.rank_files).
            tensor_parallel=int(recipe.parallel.tensor) if "shard" in ctx.runtime.stages else 1,
        )
        f = report.figures
        served = report.fakequant_dir if ctx.runtime.serves_fake_quantized else report.export_dir
        return StageOutput(
            summary=(f"{spec.format}{'' if spec.kv_cache == 'none' else ' + ' + spec.kv_cache + ' KV'} on {device}, "
                     f"{report.samples} samples: ppl {f.source_perplexity:.2f} -> {f.quantized_perplexity:.2f}, "
                     f"top-1 agreement {f.token_agreement:.3f}"),
            outputs={"model_dir": str(served), "export_dir": str(report.export_dir),
                     "fakequant_dir": str(report.fakequant_dir), "accuracy": "accuracy.json",
                     "figures": f.model_dump(), "hf_quant_config": report.hf_quant_config,
                     "format": spec.format, "kv_cache": spec.kv_cache,
                     "modelopt_version": report.modelopt_version, "calibration_sha256": report.calibration_sha256,
                     "calibration_s": report.calibration_s, "device": device},
        )

    return run_stage(ctx.store, STAGE, key, produce, ctx.refreshes(STAGE))


def record(recipe: Recipe, ctx: RunContext, result: StageResult) -> None:
    """Accuracy figures, the export's quantization config and what calibrated it; then the gates."""
    record_stage(ctx, result)
    out = result.outputs
    figures = {f"quantize_{name}": value for name, value in out["figures"].items()}
    ctx.mlflow_run.log_metrics({**figures, "quantize_calibration_s": out["calibration_s"]})
    ctx.mlflow_run.log_file(result.file("accuracy"), "quantize")
    ctx.mlflow_run.log_file(result.file("export_dir") / "hf_quant_config.json", "quantize")
    ctx.mlflow_run.set_tags({
        QUANTIZE_FORMAT_TAG: out["format"], QUANTIZE_KV_CACHE_TAG: out["kv_cache"],
        QUANTIZE_MODELOPT_VERSION_TAG: str(out["modelopt_version"]),
        QUANTIZE_CALIBRATION_SHA256_TAG: out["calibration_sha256"],
    })
    from engineforge.quantize.accuracy import AccuracyFigures

    failures = AccuracyFigures(**out["figures"]).failures(recipe.quantize.gates)
    ctx.mlflow_run.set_tags({QUANTIZE_GATES_TAG: "failed" if failures else "passed"})
    if failures:
        raise StageFailed(STAGE, "accuracy gate failed: " + "; ".join(failures))


def plan(recipe: Recipe, runtime: Runtime, plans: dict[str, StagePlan]) -> StagePlan:
    spec = recipe.quantize
    return StagePlan(stage=STAGE, notes={"format": spec.format, "kv_cache": spec.kv_cache, "exclude": spec.exclude,
                                         "calibration": spec.calibration.model_dump(mode="json"),
                                         "export_dir": "<quantize>/export", "fakequant_dir": "<quantize>/fakequant"})


# Any runtime, when the recipe asks (engineforge.quantize.support refuses what it cannot serve).
QUANTIZE = Stage(
    name=STAGE,
    key=lambda recipe, ctx, model: quantize_key(recipe, model, ctx),
    work=lambda recipe, ctx, key, model: quantize(recipe, model, ctx, key),
    record=record,
    plan=plan,
    unless=lambda recipe: None if recipe.quantize is not None else "no quantize section in the recipe",
    by_runtime=False,
)
