"""One recipe: download -> [quantize ->] shard -> build -> validate -> package -> register, recorded in MLflow.

The recipe arrives as YAML text, so a worker needs no copy of the file.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from prefect import flow

from engineforge.tracking import mlflow_runs
from engineforge.artifacts import lockfile, remote_tier
from engineforge.errors import RunFailed, StageFailed, UserError
from engineforge.tracking.mlflow_tags import (
    FLOW_RUN_TAG,
    LOCK_SHA256_TAG,
    MODEL_REVISION_TAG,
    PARALLEL_REASON_TAG,
    RUN_NAME_TAG,
)
from engineforge.orchestration import run_artifacts, stale_runs
from engineforge.orchestration.submission import store_root_for_run
from engineforge.planner import load_model_config, resolve_parallel
from engineforge.planner.report import to_json as plan_json
from engineforge.quantize.support import check_servable
from engineforge.recipe.file import parse_recipe, run_label
from engineforge.runtimes import get_runtime
from engineforge.stage_result import StageResult
from engineforge.stages import progress
from engineforge.stages.build import BUILD
from engineforge.stages.download import DOWNLOAD
from engineforge.stages.package import PACKAGE
from engineforge.stages.quantize import QUANTIZE
from engineforge.stages.register import REGISTER
from engineforge.stages.shard import SHARD
from engineforge.stages.validate import VALIDATE
from engineforge.stages.context import RunContext
from engineforge.stages.record import record_durations
from tasks.stage import run


def _flow_run_name() -> str:
    from prefect.runtime import flow_run

    try:
        return run_label(parse_recipe(flow_run.parameters["recipe_yaml"], "<recipe>"))
    except UserError:  # refused in the flow itself, so the run ends Failed with the reason, not Crashed
        return "refused-recipe"


@flow(name="model-to-deployment", log_prints=True, flow_run_name=_flow_run_name)
def model_to_deployment(
    recipe_yaml: str,
    recipe_origin: str = "<recipe>",
    base_dir: str | None = None,
    refresh: list[str] | None = None,
    store_root: str | None = None,
) -> dict[str, Any]:
    """Build, validate, package and register the model a recipe describes; return the run summary."""
    started = time.perf_counter()
    stale_runs.own_flow_run()  # before anything can fail or hang: a killed run is closed by the next
    stale_runs.crash_dead_flow_runs()  # what killed runs on this host left RUNNING in Prefect
    store_root = store_root_for_run(store_root)  # a submitted run cannot choose where the worker writes
    recipe = parse_recipe(recipe_yaml, recipe_origin)
    label = run_label(recipe)  # as written, like the flow run's name
    runtime = get_runtime(recipe.runtime)  # resolved once; the stages find it on the run context
    runtime.check_available(recipe)  # fail before any work, never fall back
    plan = resolve_parallel(recipe, load_model_config(recipe, Path(base_dir) if base_dir else None))
    recipe = plan.apply(recipe)  # "auto" sizes resolved, so stage keys hash the real layout
    check_servable(recipe)  # nor quantize into a format this runtime, layout or GPU cannot serve
    mlflow_runs.close_stale_runs(mlflow_runs.tracking_uri(recipe))  # and in this MLflow store
    mlflow_run = mlflow_runs.start_run(recipe, recipe_yaml)  # closes the run FAILED if its own first records fail
    flow_run: dict[str, str] = {}
    results: dict[str, StageResult] = {}
    failure: StageFailed | None = None
    try:
        flow_run = run_artifacts.flow_run_tags()
        mlflow_run.set_tags({PARALLEL_REASON_TAG: plan.reason[:5000], RUN_NAME_TAG: label, **flow_run})
        run_artifacts.publish_recipe(recipe)
        progress.announce(mlflow_run, flow_run)
        mlflow_run.log_text(json.dumps(plan_json(plan), indent=2, default=str), "plan.json")
        ctx = RunContext(
            runtime=runtime, store_root=store_root, mlflow_run=mlflow_run,
            base_dir=base_dir, refresh=list(refresh or []), remote_tier=remote_tier.enabled(recipe.tracking.log_engine, mlflow_run.uri),
        )
        model = results["download"] = run(DOWNLOAD, recipe, ctx)
        source = model  # what shard and build read; package and register keep the download's revision
        if recipe.quantize is not None:  # a failed accuracy gate stops the run here, before build
            source = results["quantize"] = run(QUANTIZE, recipe, ctx, model=model)
        checkpoint = results["shard"] = run(SHARD, recipe, ctx, model=source)
        built = results["build"] = run(BUILD, recipe, ctx, model=checkpoint if checkpoint.status != "skipped" else source)
        results["validate"] = run(VALIDATE, recipe, ctx, built=built)
        # what the image is labelled with: the lock's core as it stands before packaging
        lock_sha256 = lockfile.core_digest(lockfile.lock_core(recipe, results, plan.record(), _logged(ctx, results)))
        packaged = results["package"] = run(PACKAGE, recipe, ctx, built=built, model=model,
                                            lock_sha256=lock_sha256, quantized=results.get("quantize"))
        results["register"] = run(REGISTER, recipe, ctx, built=built, packaged=packaged, model=model)
    except KeyboardInterrupt:  # Ctrl-C: the run was stopped, not failed; the CLI names its records
        progress.stopped(mlflow_run.run_id, flow_run.get(FLOW_RUN_TAG))
        mlflow_run.end_killed()
        raise
    except StageFailed as failed:  # what was recorded before it stays; the run ends FAILED with its summary
        failure = failed
    except Exception as error:  # anything else once the run exists (plan.json, the store): FAILED, why tagged, raised as it was
        mlflow_run.close_failed(error)
        raise
    lock = _finish(ctx, recipe, results, plan.record(), succeeded=failure is None)
    summary = _summary(recipe, ctx, results, started, lock=None if failure else lock, failed=failure)
    _conclude(summary, recipe, label)
    if failure is not None:
        raise RunFailed.of(failure, summary) from failure
    return summary


def _conclude(summary: dict[str, Any], recipe, label: str) -> None:
    """The outcome to the caller first (it outlives a Prefect API gone by the end), then to the
    Prefect UI and `submit --watch` (the summary artifact) and to the MLflow run's description."""
    progress.concluded(summary)
    run_artifacts.publish_summary(summary, recipe.validate_.gates)
    run_artifacts.describe_mlflow_run(summary, label)


def _finish(ctx: RunContext, recipe, results: dict[str, StageResult], plan: dict, succeeded: bool) -> dict[str, Any]:
    """Write the lock file and close the MLflow run; what was recorded before a failure stays. A lock
    file that cannot be written (a full disk) leaves the run FAILED where the tracking database still takes
    that; else the next run's cleanup closes it."""
    try:
        lock = lockfile.complete_lock(lockfile.lock_core(recipe, results, plan, _logged(ctx, results)), results.get("package"))
        ctx.mlflow_run.log_text(lockfile.dumps(lock), lockfile.LOCK_FILE)
        tags = {MODEL_REVISION_TAG: str(lock["model"]["revision"]), LOCK_SHA256_TAG: lock["core_sha256"]}
        ctx.mlflow_run.set_tags(tags)
        record_durations(ctx)
    except Exception as error:
        ctx.mlflow_run.close_failed(error)
        raise
    ctx.mlflow_run.finish(succeeded)
    return lock


def _logged(ctx: RunContext, results: dict[str, StageResult]) -> dict[str, dict[str, str]]:
    """Where the tracking server holds this run's entries, with their MANIFEST.json digests (the lock file's `logged`)."""
    keys = {name: result.key for name, result in results.items() if result.key}
    return ctx.store.remote.logged_manifests(keys) if ctx.remote_tier else {}


def _summary(recipe, ctx: RunContext, results: dict[str, StageResult], started: float, lock=None, failed=None) -> dict[str, Any]:
    validate = results.get("validate")
    return {
        "recipe": recipe.name,
        "status": "failed" if failed else "completed",
        "failed_stage": failed.stage if failed else None,
        "error": failed.cause if failed else None,
        "mlflow": {"tracking_uri": ctx.mlflow_run.uri, "run_id": ctx.mlflow_run.run_id, "experiment": mlflow_runs.experiment_name(recipe)},
        "stages": [result.model_dump(mode="json") for result in results.values()],
        "figures": validate.outputs.get("figures", {}) if validate else {},
        "lock_sha256": lock["core_sha256"] if lock else None,
        "duration_s": round(time.perf_counter() - started, 3),
    }
