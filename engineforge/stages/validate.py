"""validate: serve the built model on loopback and measure it under a short streamed load."""

from __future__ import annotations

from pathlib import Path

from engineforge.errors import StageFailed, UserError
from engineforge.gpus import gpu_info, serving_device
from engineforge.recipe import Recipe
from engineforge.runtimes import get_runtime
from engineforge.serving import LOOPBACK, free_port, running_servers
from engineforge.stage import run_stage
from engineforge.stage_result import StageOutput, StageResult
from engineforge.store import Store, content_key

STAGE = "validate"
RESULTS_FILE = "validation.json"
ACCURACY_FILE = "accuracy.json"
CDF_FILE = "latency_cdf.png"
SERVER_LOG = "server.log"


def validate_key(recipe: Recipe, built: StageResult) -> str:
    """The measurement's content key (also its Prefect cache key): what determines the figures."""
    measured = {k: v for k, v in recipe.section("validate").items() if k != "gates"}
    # Gate targets judge the figures afterwards; only whether accuracy is measured changes them.
    measured["accuracy_check"] = recipe.validate_.gates.min_token_agreement is not None
    return content_key(
        STAGE, built.key, measured, recipe.section("serve"), recipe.model.dtype, serving_device(recipe.serve.device),
        gpu_info()["gpu_name"],
    )


def validate(recipe: Recipe, built: StageResult, store: Store, refresh: bool = False) -> StageResult:
    device = serving_device(recipe.serve.device)
    key = validate_key(recipe, built)
    return run_stage(
        store, STAGE, key, lambda workdir: _measure(recipe, built, device, workdir), refresh, keep_on_failure=(SERVER_LOG,)
    )


def _measure(recipe: Recipe, built: StageResult, device: str, workdir: Path) -> StageOutput:
    from engineforge.loadgen import BenchConfig, run_benchmark

    runtime = get_runtime(recipe.runtime)
    runtime.check_available(recipe)  # on this worker, before a server starts
    served_dir = built.file("served_dir")
    reference_dir = built.file("reference_dir") if "reference_dir" in built.outputs else served_dir
    port = free_port()
    log_path = workdir / SERVER_LOG
    plan = runtime.serve_plan(recipe, str(served_dir), LOOPBACK, port, device, str(workdir))
    argv = plan.commands[-1].argv
    spec = recipe.validate_
    with running_servers(plan, LOOPBACK, log_path, recipe.serve.startup_timeout_s) as url:
        result = run_benchmark(
            BenchConfig(
                endpoint=url,
                model=str(served_dir),
                api=spec.api,
                prompts=spec.prompts,
                requests=spec.requests,
                concurrency=spec.concurrency,
                warmup_requests=spec.warmup_requests,
                max_tokens=spec.max_tokens,
                ignore_eos=spec.ignore_eos,
                ignore_eos_style=runtime.ignore_eos_style,
                timeout_s=float(spec.timeout_s),
            )
        )
        accuracy = _accuracy(recipe, url, served_dir, reference_dir, workdir) if spec.gates.min_token_agreement is not None else {}
    result.write_json(workdir / RESULTS_FILE)
    # The runtime's own offline benchmark (trtllm-bench) runs once the servers have freed the GPUs.
    figures = {**result.summary, **accuracy, **_roofline(recipe, result, reference_dir),
               **runtime.bench(recipe, served_dir, workdir)}
    _plot(result, workdir)
    if figures["completed"] == 0:
        first_error = next((r.error for r in result.records if r.error), "unknown error")
        raise StageFailed(STAGE, f"all {int(figures['requests'])} requests failed; first: {first_error}")
    return StageOutput(
        summary=(
            f"{figures['output_tokens_per_s']:.1f} tok/s, TTFT p50 {figures['ttft_ms_p50']:.0f} ms, "
            f"{int(figures['errors'])} errors ({device})"
        ),
        outputs={"results": RESULTS_FILE, "server_log": SERVER_LOG, "figures": figures, "device": device,
                 "server_argv": argv, "latency_cdf": CDF_FILE} | ({"accuracy": ACCURACY_FILE} if accuracy else {}),
    )


def _accuracy(recipe: Recipe, url: str, served_dir: Path, reference_dir: Path, workdir: Path) -> dict[str, float]:
    """Greedy decodes through the server against the Hugging Face model in-process (token agreement)."""
    from engineforge.measure.accuracy import AccuracyConfig, check_accuracy

    spec = recipe.validate_
    dtype = recipe.model.dtype if recipe.model.dtype != "auto" else "float32"
    report = check_accuracy(AccuracyConfig(
        endpoint=url, model=str(served_dir), reference_model=str(reference_dir), api=spec.api, prompts=spec.prompts,
        max_tokens=spec.max_tokens, dtype=dtype, timeout_s=float(spec.timeout_s),
        trust_remote_code=recipe.model.trust_remote_code,
    ))
    (workdir / ACCURACY_FILE).write_text(report.model_dump_json(indent=1) + "\n")
    return report.figures()


def _roofline(recipe: Recipe, result, model_dir: Path) -> dict[str, float]:
    """Decode roofline figures when the run sampled a GPU and the model dir has a config.json."""
    from engineforge.measure.roofline import roofline_figures

    if not result.gpus or not (model_dir / "config.json").is_file():
        return {}
    try:
        return roofline_figures(model_dir, result.gpus[0], result.summary, recipe.validate_.concurrency,
                                recipe.model.dtype)
    except UserError:  # a card without a known bandwidth: no roofline, the run still counts
        return {}


def _plot(result, workdir: Path) -> None:
    from engineforge.measure.plots import latency_cdf

    latency_cdf({f"concurrency {result.config.concurrency}": result}, workdir / CDF_FILE)
