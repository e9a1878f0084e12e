"""The one Prefect task every stage runs as: `run(STAGE, recipe, ctx, **inputs)`.

What a stage is lives in its `Stage` (engineforge/stages/<stage>.py); this is how any of them runs in
a flow: it asks whether the stage applies, computes its content key once (an explicit call, handed to
the work), holds its GPU slots around the task run, names its failures, uploads to the remote tier
and records (and judges) the result in MLflow.

The content-addressed store is the only cache and the only lock (engineforge/stages/run_stage.py):
every stage task runs, and a stage the store already holds returns at once as `cached`. Prefect
caches nothing; the task run of a reused stage only reads `Cached` in the Prefect UI, one that skips
itself `Skipped`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed

from engineforge.stages import progress
from engineforge.errors import EngineForgeError, StageFailed, UserError
from engineforge.orchestration import gpu_slots, retries, run_artifacts
from engineforge.recipe.schema import Recipe
from engineforge.stage_result import StageResult
from engineforge.stages.stage import Stage
from engineforge.stages.context import RunContext


def run(stage: Stage, recipe: Recipe, ctx: RunContext, **inputs: Any) -> StageResult:
    """`stage` for `recipe` in this run: skipped when it does not apply, else its task run; recorded either way."""
    reason = stage.skip_reason(recipe, ctx.runtime)
    if reason is not None:  # the stage does not apply: no task run, just the record of why
        return finish(stage, recipe, ctx, StageResult(stage=stage.name, status="skipped", summary=reason))
    # The stage's progress artifact hears the task's events and, once the result is recorded, its end.
    with run_artifacts.stage_progress(stage.name):
        return finish(stage, recipe, ctx, _task_run(stage, recipe, ctx, inputs))


def _task_run(stage: Stage, recipe: Recipe, ctx: RunContext, inputs: dict[str, Any]) -> StageResult:
    """The task run (the store decides whether it computes), uploaded to the remote tier when there is one."""
    with _named_failures(stage.name, ctx):
        key = stage.content_key(recipe, ctx, inputs)  # computed once, here; the stage does not compute it again
    # Only whether to wait for GPU slots: the stage itself decides again, under the key's lock.
    stored = key is not None and not ctx.refreshes(stage.name) and ctx.store.intact(stage.name, key)
    prefect_task = stage_task(stage).with_options(timeout_seconds=stage.timeout_s(recipe))
    with gpu_slots.holding_gpus(stage.name, 0 if stored else gpu_slots.gpus_needed(stage, recipe, ctx.runtime)):
        state = prefect_task(recipe, ctx, key, inputs, return_state=True)
    result = state.result()  # a failed stage raises its StageFailed here
    if ctx.remote_tier and result.key and result.status in ("ran", "cached"):
        with _named_failures(stage.name, ctx):  # a failed upload fails the stage: nothing is registered
            store = ctx.store
            store.remote.upload(store, stage.name, result.key)
    return result


def finish(stage: Stage, recipe: Recipe, ctx: RunContext, result: StageResult) -> StageResult:
    """Record the result, then announce it (`progress.finished`): the record judges it too (a failed
    gate fails validate after its measurement), and the live line says what the table will."""
    try:
        with _named_failures(stage.name, ctx):
            stage.record(recipe, ctx, result)
    except StageFailed:
        progress.finished(result.model_copy(update={"status": "failed"}))
        raise
    progress.finished(result)
    run_artifacts.log_stage(result, ctx.mlflow_run)
    return result


@cache
def stage_task(stage: Stage):
    """The Prefect task named after `stage` (its retries, failures as StageFailed(stage, cause)); made once."""
    def work(recipe: Recipe, ctx: RunContext | None, key: str | None, inputs: dict[str, Any]):
        with _named_failures(stage.name, ctx, keep_logs=True):
            result = stage.work(recipe, ctx, key, **inputs)
        # Reused from the store, or skipped at run time (no Docker daemon): the Prefect UI names the task
        # run's state so, instead of a plain Completed; the flow still gets the StageResult as its data.
        if result.status == "cached":
            return Completed(name="Cached", data=result)
        if result.status == "skipped":
            return Completed(name="Skipped", message=result.summary, data=result)
        return result

    return task(
        name=stage.name,
        retries=len(stage.retries),
        retry_delay_seconds=list(stage.retries) or 0,
        retry_condition_fn=retry_unless_user_error,
        cache_policy=NO_CACHE,  # the store is the cache (engineforge/stages/run_stage.py)
    )(work)


def retry_unless_user_error(task, task_run, state) -> bool:
    # Retrying cannot fix bad input, a full disk or an HTTP 4xx (engineforge/orchestration/retries.py).
    error = state.result(raise_on_failure=False)
    return not (isinstance(error, EngineForgeError) and not error.retryable)


class _named_failures:
    """Turn any error into StageFailed(stage, cause); user errors are marked so they are not retried."""

    def __init__(self, stage: str, ctx: RunContext | None, keep_logs: bool = False):
        self.stage, self.ctx, self.keep_logs = stage, ctx, keep_logs

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if error is None or not isinstance(error, Exception):
            return False
        if self.keep_logs:
            _record_failure_logs(self.stage, self.ctx)
        if isinstance(error, StageFailed):
            return False
        if isinstance(error, UserError):
            raise StageFailed(self.stage, str(error), user_error=True) from error
        try:
            get_run_logger().exception("stage %s failed", self.stage)
        except Exception:  # outside a run there is no run logger
            pass
        # A full disk or an HTTP 4xx fails the same way every time: marked so it is not retried.
        raise StageFailed(self.stage, f"{type(error).__name__}: {error}", user_error=not retries.can_pass(error)) from error


def _record_failure_logs(stage: str, ctx: RunContext | None) -> None:
    """The logs a failed stage kept (server, build tool, container) go to its MLflow run: they are
    the best clue to what went wrong, and the stage's own directory was discarded."""
    if ctx is None:
        return
    kept = ctx.store.failure_dir(stage)
    for path in sorted(p for p in kept.rglob("*") if p.is_file()):
        artifact_dir = f"{stage}/failed/{path.parent.relative_to(kept)}".rstrip("/.")
        ctx.mlflow_run.log_file(path, artifact_dir)
