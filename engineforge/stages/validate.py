"""validate: serve the built model on loopback and measure it under a short streamed load."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

from engineforge import progress
from engineforge.child_environment import model_server_environment
from engineforge.errors import StageFailed
from engineforge.gpus import gpu_info, serving_device
from engineforge.recipe import Recipe
from engineforge.runtimes.base import Runtime
from engineforge.serving import LOOPBACK, free_port, running_servers
from engineforge.stage import run_stage
from engineforge.stage_result import StageOutput, StageResult
from engineforge.stages.context import RunContext
from engineforge.store import content_key

STAGE = "validate"
RESULTS_FILE = "validation.json"
ACCURACY_FILE = "accuracy.json"
CDF_FILE = "latency_cdf.png"
SERVER_LOG = "server.log"


def validate_key(recipe: Recipe, built: StageResult) -> str:
    """The measurement's content key: what determines the figures."""
    measured = {k: v for k, v in recipe.section("validate").items() if k != "gates"}
    # Gate targets judge the figures afterwards; only whether accuracy is measured changes them.
    measured["accuracy_check"] = recipe.validate_.gates.min_token_agreement is not None
    return content_key(
        STAGE, built.key, measured, recipe.section("serve"), recipe.model.dtype, serving_device(recipe.serve.device),
        gpu_info()["gpu_name"],
    )


def validate(recipe: Recipe, built: StageResult, ctx: RunContext, key: str) -> StageResult:
    device = serving_device(recipe.serve.device)
    return run_stage(
        ctx.store, STAGE, key, lambda workdir: _measure(recipe, built, ctx.runtime, device, workdir),
        ctx.refreshes(STAGE), keep_on_failure=(SERVER_LOG,),
    )


def bench_config(recipe: Recipe, runtime: Runtime, url: str, model: str):
    """The load generator's settings from the recipe's validate section."""
    from engineforge.loadgen import BenchConfig

    spec = recipe.validate_
    return BenchConfig(
        endpoint=url, model=model, api=spec.api, prompts=spec.prompts, requests=spec.requests,
        concurrency=spec.concurrency, request_rate=spec.request_rate, warmup_requests=spec.warmup_requests,
        max_tokens=spec.max_tokens, ignore_eos=spec.ignore_eos, ignore_eos_style=runtime.ignore_eos_style,
        timeout_s=float(spec.timeout_s),
    )


def _measure(recipe: Recipe, built: StageResult, runtime: Runtime, device: str, workdir: Path) -> StageOutput:
    from engineforge.measure.measurement import AccuracyCheck, RooflineCheck, measure

    runtime.check_available(recipe)  # on this worker, before a server starts
    served_dir = built.file("served_dir")
    reference_dir = built.file("reference_dir") if "reference_dir" in built.outputs else served_dir
    port = free_port()
    log_path = workdir / SERVER_LOG
    plan = runtime.serve_plan(recipe, str(served_dir), LOOPBACK, port, device, str(workdir))
    argv = plan.commands[-1].argv
    spec = recipe.validate_
    # Greedy decodes through the server against the Hugging Face model in-process, when a gate reads them.
    accuracy = AccuracyCheck(
        reference_model=str(reference_dir), prompts=spec.prompts, trust_remote_code=recipe.model.trust_remote_code,
        dtype=recipe.model.dtype if recipe.model.dtype != "auto" else "float32",
    ) if spec.gates.min_token_agreement is not None else None
    server_env = model_server_environment(recipe.serve.hub_kernels)
    with running_servers(plan, LOOPBACK, log_path, recipe.serve.startup_timeout_s, server_env) as url:
        measured = measure(
            bench_config(recipe, runtime, url, str(served_dir)),
            accuracy=accuracy,
            roofline=RooflineCheck(model_dir=reference_dir, dtype=recipe.model.dtype,
                                   kv_cache_dtype=recipe.build.kv_cache_dtype, quantize=recipe.quantize),
            on_record=_count_requests(spec.requests),
        )
    result = measured.result
    result.write_json(workdir / RESULTS_FILE)
    if measured.accuracy is not None:
        (workdir / ACCURACY_FILE).write_text(measured.accuracy.model_dump_json(indent=1) + "\n")
    # The runtime's own offline benchmark (trtllm-bench) runs once the servers have freed the GPUs.
    figures = measured.figures | runtime.bench(recipe, served_dir, workdir)
    _plot(result, workdir)
    if figures["completed"] == 0:
        first_error = next((r.error for r in result.records if r.error), "unknown error")
        raise StageFailed(STAGE, f"all {int(figures['requests'])} requests failed; first: {first_error}")
    ttft = figures["ttft_ms_p50"]
    return StageOutput(
        summary=(
            f"{figures['output_tokens_per_s']:.1f} tok/s, "
            f"TTFT p50 {f'{ttft:.0f} ms' if math.isfinite(ttft) else 'missing (' + measured.missing['ttft_ms_p50'] + ')'}, "
            f"{int(figures['errors'])} errors ({device})"
        ),
        outputs={"results": RESULTS_FILE, "server_log": SERVER_LOG, "figures": figures, "missing": measured.missing,
                 "device": device, "server_argv": argv, "server_env": server_env, "latency_cdf": CDF_FILE}
        | ({"accuracy": ACCURACY_FILE} if accuracy else {}),
    )


def _count_requests(total: int):
    """Requests answered so far, for the CLI's spinner (`engineforge.progress`)."""
    answered = itertools.count(1)
    return lambda record: progress.counted(STAGE, next(answered), total, "requests")


def _plot(result, workdir: Path) -> None:
    from engineforge.measure.plots import latency_cdf

    latency_cdf({f"concurrency {result.config.concurrency}": result}, workdir / CDF_FILE)
