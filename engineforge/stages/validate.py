"""validate: serve the built model on loopback and measure it under a short streamed load."""

from __future__ import annotations

import functools
import itertools
import math
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from engineforge.stages import progress
from engineforge.tracking import mlflow_runs
from engineforge.processes.environment import model_server_environment
from engineforge.errors import StageFailed
from engineforge.gpus import gpu_info, serving_device
from engineforge.measure import intervals, turns
from engineforge.measure.gates import evaluate_gates, judged_figures, validation_rows
from engineforge.measure.intervals import CI_SUFFIX, REPEATS_METRIC
from engineforge.tracking.mlflow_tags import CACHE_HIT_TAG, MEASURED_BY_TAG, MEASURED_TAG, missing
from engineforge.recipe.schema import Recipe
from engineforge.runtimes.base import Runtime
from engineforge.processes.serving import LOOPBACK, free_port, running_servers
from engineforge.stages.run_stage import run_stage
from engineforge.stage_plan import PORT, StagePlan
from engineforge.stage_result import StageOutput, StageResult
from engineforge.stages.context import RunContext
from engineforge.stages.record import record_stage
from engineforge.stages.stage import Stage, switch
from engineforge.artifacts.store import content_key

STAGE = "validate"
RESULTS_FILE = "validation.json"
ACCURACY_FILE = "accuracy.json"
CDF_FILE = "latency_cdf.png"
SERVER_LOG = "server.log"
# How a run repeats its measurement, not what one measurement measures; gate targets judge figures afterwards.
NOT_MEASURED = ("gates", "repeats", "restart_server", "cooldown_s")


def measurement_key(recipe: Recipe, built: StageResult) -> str:
    """One measurement's content key: what determines its figures."""
    measured = {k: v for k, v in recipe.section("validate").items() if k not in NOT_MEASURED}
    # Gate targets judge the figures afterwards; only whether accuracy is measured changes them.
    measured["accuracy_check"] = recipe.validate_.gates.min_token_agreement is not None
    return content_key(
        STAGE, built.key, measured, recipe.section("serve"), recipe.model.dtype, serving_device(recipe.serve.device),
        gpu_info()["gpu_name"],
    )


def repeat_keys(recipe: Recipe, built: StageResult) -> list[str]:
    """Each repeat's own key: the first is the single measurement's (a run with repeats reuses it and a
    later single run reuses the first repeat); the others count up, on a fresh or the same server."""
    first = measurement_key(recipe, built)
    server = {"restart_server": recipe.validate_.restart_server}
    return [first] + [content_key(STAGE, first, server | {"repeat": i}) for i in range(1, recipe.validate_.repeats)]


def validate_key(recipe: Recipe, built: StageResult) -> str:
    """The stage's content key (also its Prefect cache key): one measurement's, or its repeats' together."""
    spec = recipe.validate_
    if spec.repeats == 1:
        return measurement_key(recipe, built)
    return content_key(STAGE, repeat_keys(recipe, built))


def validate(recipe: Recipe, built: StageResult, ctx: RunContext, key: str) -> StageResult:
    device = serving_device(recipe.serve.device)
    if recipe.validate_.repeats == 1:
        return run_stage(
            ctx.store, STAGE, key, lambda workdir: _measure(recipe, built, ctx.runtime, device, workdir),
            ctx.refreshes(STAGE), keep_on_failure=(SERVER_LOG,),
        )
    started = time.perf_counter()
    measure_repeats = _fresh_servers if recipe.validate_.restart_server else _one_server
    repeats = measure_repeats(recipe, built, ctx, device, repeat_keys(recipe, built))
    combined = run_stage(ctx.store, STAGE, key, lambda workdir: _combined(repeats, workdir), ctx.refreshes(STAGE))
    # The stage took its repeats and their turns, not just the combining.
    return combined.model_copy(update={"duration_s": round(time.perf_counter() - started, 3)})


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
    """One measurement on a server of its own."""
    runtime.check_available(recipe)  # on this worker, before a server starts
    with _serving(recipe, built, runtime, device, workdir / SERVER_LOG) as (url, argv):
        measured = _load(recipe, built, runtime, url)
    return _output(recipe, runtime, built, device, workdir, measured, argv)


@contextmanager
def _serving(recipe: Recipe, built: StageResult, runtime: Runtime, device: str, log_path: Path):
    """The built model served on loopback: (its URL, the server's command line)."""
    plan = runtime.serve_plan(recipe, str(built.file("served_dir")), LOOPBACK, free_port(), device, str(log_path.parent))
    with running_servers(plan, LOOPBACK, log_path, recipe.serve.startup_timeout_s,
                         model_server_environment(recipe.serve.hub_kernels)) as url:
        yield url, plan.commands[-1].argv


def _load(recipe: Recipe, built: StageResult, runtime: Runtime, url: str):
    """The load (and the accuracy and roofline checks) against the server at `url`."""
    from engineforge.measure.measurement import AccuracyCheck, RooflineCheck, measure

    served_dir = built.file("served_dir")
    reference_dir = built.file("reference_dir") if "reference_dir" in built.outputs else served_dir
    spec = recipe.validate_
    # Greedy decodes through the server against the Hugging Face model in-process, when a gate reads them.
    accuracy = AccuracyCheck(
        reference_model=str(reference_dir), prompts=spec.prompts, trust_remote_code=recipe.model.trust_remote_code,
        dtype=recipe.model.dtype if recipe.model.dtype != "auto" else "float32",
    ) if spec.gates.min_token_agreement is not None else None
    return measure(
        bench_config(recipe, runtime, url, str(served_dir)),
        accuracy=accuracy,
        roofline=RooflineCheck(model_dir=reference_dir, dtype=recipe.model.dtype,
                               kv_cache_dtype=recipe.build.kv_cache_dtype, quantize=recipe.quantize),
        on_record=_count_requests(spec.requests),
    )


def _output(recipe: Recipe, runtime: Runtime, built: StageResult, device: str, workdir: Path, measured,
            argv: list[str]) -> StageOutput:
    """A measurement's files and figures, once its server has stopped."""
    result = measured.result
    result.write_json(workdir / RESULTS_FILE)
    if measured.accuracy is not None:
        (workdir / ACCURACY_FILE).write_text(measured.accuracy.model_dump_json(indent=1) + "\n")
    # The runtime's own offline benchmark (trtllm-bench) runs once the servers have freed the GPUs.
    figures = measured.figures | runtime.bench(recipe, built.file("served_dir"), workdir)
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
                 "device": device, "server_argv": argv, "server_env": model_server_environment(recipe.serve.hub_kernels),
                 "cdf_results": {f"concurrency {result.config.concurrency}": RESULTS_FILE}}
        | ({"accuracy": ACCURACY_FILE} if measured.accuracy is not None else {}),
    )


def _fresh_servers(recipe: Recipe, built: StageResult, ctx: RunContext, device: str, keys: list[str]) -> list[StageResult]:
    """Each repeat on a server of its own, measured in its turn (turns.py); a repeat already stored is reused.
    Where two servers may share the device, the server starts and becomes healthy before the turn (in a
    place in line, while another measures) and the turn holds only the load; elsewhere the turn holds it all."""
    seat = turns.seat(recipe.validate_.cooldown_s)
    beside = ctx.runtime.traits.servers_share(device)

    def measure(repeat: int, workdir: Path) -> StageOutput:
        if not beside:
            with seat.turn(repeat):
                return _measure(recipe, built, ctx.runtime, device, workdir)
        ctx.runtime.check_available(recipe)
        with seat.standby(repeat), _serving(recipe, built, ctx.runtime, device, workdir / SERVER_LOG) as (url, argv):
            with seat.turn(repeat):
                measured = _load(recipe, built, ctx.runtime, url)
        return _output(recipe, ctx.runtime, built, device, workdir, measured, argv)

    return [run_stage(ctx.store, STAGE, key, functools.partial(measure, repeat), ctx.refreshes(STAGE),
                      keep_on_failure=(SERVER_LOG,)) for repeat, key in enumerate(keys)]


def _one_server(recipe: Recipe, built: StageResult, ctx: RunContext, device: str, keys: list[str]) -> list[StageResult]:
    """The repeats back to back on one server (one turn); each is stored once the server has stopped,
    so the runtime's offline benchmark never shares the GPUs with it."""
    missing = [key for key in keys if ctx.refreshes(STAGE) or not ctx.store.intact(STAGE, key)]
    loads = {}
    with tempfile.TemporaryDirectory() as scratch:
        log_path = Path(scratch) / SERVER_LOG
        if missing:
            ctx.runtime.check_available(recipe)
            with turns.seat(recipe.validate_.cooldown_s).turn(0), \
                    _serving(recipe, built, ctx.runtime, device, log_path) as (url, argv):
                for index, key in enumerate(missing):
                    time.sleep(recipe.validate_.cooldown_s if index else 0.0)
                    loads[key] = _load(recipe, built, ctx.runtime, url)

        def stored(key: str, workdir: Path) -> StageOutput:
            shutil.copyfile(log_path, workdir / SERVER_LOG)  # the one server's log, in every repeat it served
            return _output(recipe, ctx.runtime, built, device, workdir, loads[key], argv)

        return [run_stage(ctx.store, STAGE, key, functools.partial(stored, key), key in loads) for key in keys]


def _combined(repeats: list[StageResult], workdir: Path) -> StageOutput:
    """The repeats as one result: every figure their mean (repeats_values.json keeps each repeat's), each
    repeat's files under repeat-<n>/ (the run's latency plot draws a line per repeat from them)."""
    per_repeat = [result.outputs["figures"] for result in repeats]
    stats = intervals.combine(per_repeat)
    for number, result in enumerate(repeats, start=1):
        folder = workdir / f"repeat-{number}"
        folder.mkdir()
        for name in ("results", "server_log", "accuracy"):
            if name in result.outputs:
                shutil.copyfile(result.file(name), folder / Path(result.outputs[name]).name)
    throughput, ttft = stats["output_tokens_per_s"], stats["ttft_ms_p50"]
    first = repeats[0].outputs
    return StageOutput(
        summary=(f"{_plus_minus(throughput)} tok/s, TTFT p50 {_plus_minus(ttft, 0)} ms over {len(repeats)} repeats, "
                 f"{int(sum(f['errors'] for f in per_repeat))} errors ({first['device']})"),
        outputs={"results": f"repeat-1/{RESULTS_FILE}", "server_log": f"repeat-1/{SERVER_LOG}",
                 "figures": {name: interval.mean for name, interval in stats.items()}, "repeat_figures": per_repeat,
                 "repeat_keys": [result.key for result in repeats], "device": first["device"],
                 "server_argv": first["server_argv"],
                 "cdf_results": {f"repeat {number}": f"repeat-{number}/{RESULTS_FILE}" for number in range(1, len(repeats) + 1)}}
        | ({"accuracy": f"repeat-1/{ACCURACY_FILE}"} if "accuracy" in first else {}),
    )


def _plus_minus(interval, decimals: int = 1) -> str:
    width = interval.half_width
    return f"{interval.mean:.{decimals}f}" + (f" ± {width:.{decimals}f}" if width is not None else "")


def _count_requests(total: int):
    """Requests answered so far, for the CLI's spinner (`engineforge.stages.progress`)."""
    answered = itertools.count(1)
    return lambda record: progress.counted(STAGE, next(answered), total, "requests")


def _log_cdf(recipe: Recipe, ctx: RunContext, result: StageResult) -> None:
    """The latency CDF of the measured results, drawn for this run: titled with its recipe, with the recipe's
    latency gates (the stored measurement is content-keyed, and its key leaves the gates out)."""
    from engineforge.loadgen import BenchResult
    from engineforge.measure.plots import latency_cdf

    if "cdf_results" not in result.outputs:
        if "latency_cdf" in result.outputs:  # stored by an older version, with its plot
            ctx.mlflow_run.log_file(result.file("latency_cdf"), STAGE)
        return
    results = {label: BenchResult.read_json(Path(result.path or ".") / path) for label, path in result.outputs["cdf_results"].items()}
    with tempfile.TemporaryDirectory() as directory:
        plot = latency_cdf(results, Path(directory) / CDF_FILE, recipe.name, recipe.validate_.gates)
        ctx.mlflow_run.log_file(plot, STAGE)


def record(recipe: Recipe, ctx: RunContext, result: StageResult) -> None:
    """Figures, files and the gates' verdict (gates judge the figures every run, cached or not)."""
    if result.status == "skipped":
        return
    # Repeated figures are gated on the pessimistic end of their 95 % interval (gates.judged_figures).
    repeats = result.outputs.get("repeat_figures", [])
    report = evaluate_gates(recipe.validate_.gates, judged_figures(result.outputs["figures"], repeats),
                            result.outputs.get("missing"))
    record_stage(ctx, result if report.passed else result.model_copy(update={"status": "failed"}))
    _record_figures(recipe, ctx, result)
    for name in ("results", "server_log", "accuracy"):
        if name in result.outputs:
            ctx.mlflow_run.log_file(result.file(name), STAGE)
    _log_cdf(recipe, ctx, result)
    _check_gates(report, ctx, _bounds_line(report, repeats))


def _record_figures(recipe: Recipe, ctx: RunContext, result: StageResult) -> None:
    """Figures measured by this run become its metrics; a result reused from the store or a remote
    tier was measured by another run, so this one is tagged a cache hit pointing at that run
    instead of logging the same figures again as new measurements. The table is shown either way."""
    figures = result.outputs["figures"]
    if result.status == "ran":
        _log_figures(ctx, figures, result.outputs.get("repeat_figures", []))
        missing_figures = {missing(name): reason for name, reason in result.outputs.get("missing", {}).items()}
        ctx.mlflow_run.set_tags({MEASURED_TAG: result.key} | missing_figures)
    else:
        measured = mlflow_runs.run_with_tag(ctx.mlflow_run.uri, mlflow_runs.experiment_name(recipe), MEASURED_TAG, result.key)
        tags = {CACHE_HIT_TAG: "true"} | ({MEASURED_BY_TAG: measured.info.run_id} if measured else {})
        ctx.mlflow_run.set_tags(tags)
    rows = validation_rows(figures, recipe.validate_.gates, result.outputs.get("missing"),
                           result.outputs.get("repeat_figures", []))
    if rows:
        ctx.mlflow_run.log_table(rows, "validate/figures.json")


def _log_figures(ctx: RunContext, means: dict[str, float], repeats: list[dict[str, float]]) -> None:
    """Each repeat's figures at steps 0..n-1, then their means at step n (what the run shows as the figure),
    `<figure>_ci95` (the 95 % interval's half width, where two or more repeats measured it) and `validate_repeats`."""
    for step, figures in enumerate(repeats):
        ctx.mlflow_run.log_metrics(figures, step=step)
    widths = {f"{name}{CI_SUFFIX}": stats.half_width for name, stats in intervals.combine(repeats).items()
              if stats.half_width is not None}
    extra = widths | {REPEATS_METRIC: len(repeats)} if repeats else {}
    ctx.mlflow_run.log_metrics(means | extra, step=len(repeats))


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
    ctx.mlflow_run.set_tags({"gates": report.verdict})
    if report.results:
        with tempfile.TemporaryDirectory() as directory:
            table = Path(directory) / "gates.txt"
            table.write_text(report.to_text() + "\n" + (bounds + "\n" if bounds else ""))
            ctx.mlflow_run.log_file(table, STAGE)
    report.raise_if_failed(STAGE)


def plan(recipe: Recipe, runtime: Runtime, plans: dict[str, StagePlan]) -> StagePlan:
    """The runtime's servers (and bench), and the load the stage sends them."""
    spec = recipe.validate_
    load = {"endpoint": f"http://127.0.0.1:{PORT}", "api": spec.api, "requests": spec.requests,
            "concurrency": spec.concurrency, "warmup_requests": spec.warmup_requests, "max_tokens": spec.max_tokens}
    return plans[STAGE].model_copy(update={"notes": {**plans[STAGE].notes, "load": load}})


def gpus(recipe: Recipe, runtime: Runtime) -> int:
    """The layout's GPUs when it serves on a GPU."""
    return recipe.parallel.gpus if recipe.validate_.enabled and serving_device(recipe.serve.device) == "cuda" else 0


VALIDATE = Stage(
    name=STAGE,
    key=lambda recipe, ctx, built: validate_key(recipe, built),
    work=lambda recipe, ctx, key, built: validate(recipe, built, ctx, key),
    record=record,
    plan=plan,
    gpus=gpus,
    unless=switch("validate.enabled", lambda recipe: recipe.validate_.enabled),
    timeout_s=lambda recipe: recipe.validate_.timeout_s,
)
