"""What validation measures, in one call for the validate stage and `engineforge bench`: the load
(one run or a concurrency sweep) with GPU telemetry around its measured requests, accuracy
against the reference model, the decode roofline, and the gates.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from engineforge.errors import UserError
from engineforge.loadgen.config import BenchConfig
from engineforge.loadgen.records import BenchResult
from engineforge.loadgen.runner import OnRecord, run_benchmark
from engineforge.loadgen.sweep import SweepResult, run_sweep
from engineforge.measure.accuracy import AccuracyConfig, AccuracyReport, check_accuracy
from engineforge.measure.gates import GateReport, evaluate_gates
from engineforge.measure.roofline import roofline_figures
from engineforge.measure.telemetry import GpuSampler
from engineforge.recipe.schema import Gates, QuantizeSpec


class AccuracyCheck(BaseModel):
    """Compare greedy decodes of the endpoint with the source model decoded in-process."""

    model_config = ConfigDict(extra="forbid")

    reference_model: str
    prompts: list[str] = Field(..., min_length=1)
    dtype: str = "float32"
    trust_remote_code: bool = False


class RooflineCheck(BaseModel):
    """The decode roofline of the model in `model_dir` on the GPU the run used."""

    model_config = ConfigDict(extra="forbid")

    model_dir: Path
    gpu: str | None = None  # catalogue name; default: the GPU telemetry sampled
    dtype: str = "auto"
    kv_cache_dtype: str = "auto"
    quantize: QuantizeSpec | None = None  # the recipe's quantize section: the served weight and KV widths
    required: bool = False  # False: no GPU, no config.json or an unknown bandwidth just means no figures


class Measurement(BaseModel):
    result: BenchResult  # the run, or a sweep's last level
    sweep: SweepResult | None = None
    accuracy: AccuracyReport | None = None
    gates: GateReport | None = None
    figures: dict[str, float]
    missing: dict[str, str] = {}  # figure -> why it has no value (it is NaN in `figures`)


def measure(
    config: BenchConfig,
    levels: list[int] | None = None,
    accuracy: AccuracyCheck | None = None,
    roofline: RooflineCheck | None = None,
    gates: Gates | None = None,
    on_record: OnRecord | None = None,
) -> Measurement:
    """Run the load (a sweep over `levels` when given), then the checks asked for, against `config.endpoint`."""
    samplers: list[GpuSampler] = []

    def sampler() -> GpuSampler:
        samplers.append(GpuSampler())
        return samplers[-1]

    probe = sampler if config.gpu_telemetry else None
    sweep = None
    if levels is None:
        result = run_benchmark(config, on_record, probe)
        figures = dict(result.summary)
    else:
        sweep = run_sweep(config, levels, on_record=on_record, probe=probe)
        result = sweep.points[-1]
        figures = {"sweep_levels": float(len(levels))} | result.summary
    report = _accuracy(config, accuracy) if accuracy is not None else None
    if report is not None:
        figures |= report.figures()
    if roofline is not None:
        bandwidths = samplers[-1].memory_bandwidth_bytes_s if samplers else []
        figures |= _roofline(roofline, result, bandwidths[0] if bandwidths else None)
    missing = dict(result.missing)
    verdict = evaluate_gates(gates, figures, missing) if gates is not None else None
    return Measurement(result=result, sweep=sweep, accuracy=report, gates=verdict, figures=figures, missing=missing)


def _accuracy(config: BenchConfig, check: AccuracyCheck) -> AccuracyReport:
    return check_accuracy(AccuracyConfig(
        endpoint=config.endpoint, model=config.model, reference_model=check.reference_model, api=config.api,
        prompts=check.prompts, max_tokens=config.max_tokens, dtype=check.dtype,
        timeout_s=config.timeout_s, trust_remote_code=check.trust_remote_code,
    ))


def _roofline(check: RooflineCheck, result: BenchResult, nvml_bytes_s: float | None) -> dict[str, float]:
    gpu = check.gpu or (result.gpus[0] if result.gpus else None)
    if gpu is None:
        if check.required:
            raise UserError("roofline: no GPU detected; name the card with --gpu NAME (e.g. H100-SXM)")
        return {}
    if not check.required and not (check.model_dir / "config.json").is_file():
        return {}
    try:
        return roofline_figures(check.model_dir, gpu, result.summary, result.config.concurrency, check.dtype,
                                nvml_bytes_s, check.kv_cache_dtype, check.quantize)
    except UserError:
        if check.required:
            raise
        return {}  # a card without a known bandwidth: no roofline, the run still counts
