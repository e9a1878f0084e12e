"""The one decorator every stage task shares: Prefect options, GPU slots, errors named by stage.

The content-addressed store is the only cache and the only lock (engineforge/stage.py `run_stage`):
every stage task runs, and a stage the store already holds returns at once as `cached`. Prefect
caches nothing; the task run of a reused stage only reads `Cached` in the Prefect UI, one that skips itself `Skipped`.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed

from engineforge import progress, tracking
from engineforge.errors import EngineForgeError, StageFailed, UserError
from engineforge.orchestration import gpu_slots, retries, run_artifacts
from engineforge.recipe import Recipe
from engineforge.stage_result import StageResult
from engineforge.stages import skip_reason
from engineforge.stages.context import RunContext

# The stage's content key from (some of) the task's arguments by name, `runtime` being the run's runtime.
KeyFn = Callable[..., "str | None"]
RecordFn = Callable[[Recipe, RunContext, StageResult], None]  # what the run's MLflow run keeps of a result


def _retry_unless_user_error(task, task_run, state) -> bool:
    # Retrying cannot fix bad input, a full disk or an HTTP 4xx (engineforge/orchestration/retries.py).
    error = state.result(raise_on_failure=False)
    return not (isinstance(error, EngineForgeError) and not error.retryable)


class StageTask:
    """A stage's Prefect task as the flow calls it.

    With a key function, the stage's content key is computed once, here, and handed to the stage.
    The GPU slots the stage uses are held around the task run (engineforge/gpu_slots.py), so the run's
    start and end bound its use of the GPUs; a result already in the store needs none. The run's
    MLflow run records every result, computed or cached, after the task run (`record`).
    """

    def __init__(self, stage: str, prefect_task, key: KeyFn | None = None, record: RecordFn | None = None):
        self.stage = stage
        self.task = prefect_task
        self.key = key
        self.record = record
        self._signature = inspect.signature(prefect_task.fn)

    def with_options(self, **options: Any) -> "StageTask":
        return StageTask(self.stage, self.task.with_options(**options), self.key, self.record)

    def __call__(self, *args: Any, **kwargs: Any) -> StageResult:
        inputs = self._signature.bind_partial(*args, **kwargs).arguments
        recipe, ctx = inputs["recipe"], inputs["ctx"]
        reason = skip_reason(self.stage, recipe, ctx.runtime)
        if reason is not None:  # the stage does not apply: no task run, just the record of why
            return self._finish(recipe, ctx, StageResult(stage=self.stage, status="skipped", summary=reason))
        # The stage's progress artifact hears the task's events and, once the result is recorded, its end.
        with run_artifacts.stage_progress(self.stage):
            return self._finish(recipe, ctx, self._run(args, kwargs, inputs, ctx))

    def _run(self, args: tuple, kwargs: dict[str, Any], inputs: dict[str, Any], ctx: RunContext) -> StageResult:
        """The task run (the store decides whether it computes), uploaded to the remote tier when there is one."""
        recipe = inputs["recipe"]
        with _named_failures(self.stage, ctx):
            key = self.key(**{name: inputs.get(name, ctx.runtime if name == "runtime" else None)
                              for name in inspect.signature(self.key).parameters}) if self.key else None
        if "key" in self._signature.parameters:
            kwargs["key"] = key  # computed once, here; the stage does not compute it again
        # Only whether to wait for GPU slots: the stage itself decides again, under the key's lock.
        stored = key is not None and not ctx.refreshes(self.stage) and ctx.store.intact(self.stage, key)
        with gpu_slots.holding_gpus(self.stage, 0 if stored else gpu_slots.gpus_needed(self.stage, recipe, ctx.runtime)):
            state = self.task(*args, return_state=True, **kwargs)
        result = state.result()  # a failed stage raises its StageFailed here
        if ctx.remote_tier and result.key and result.status in ("ran", "cached"):
            with _named_failures(self.stage, ctx):  # a failed upload fails the stage: nothing is registered
                store = ctx.store
                store.remote.upload(store, self.stage, result.key)
        return result

    def _finish(self, recipe: Recipe, ctx: RunContext, result: StageResult) -> StageResult:
        """Record the result, then announce it (`progress.finished`): the record judges it too (a failed
        gate fails validate after its measurement), and the live line says what the table will."""
        try:
            if self.record:
                with _named_failures(self.stage, ctx):
                    self.record(recipe, ctx, result)
        except StageFailed:
            progress.finished(result.model_copy(update={"status": "failed"}))
            raise
        progress.finished(result)
        run_artifacts.log_stage(result, ctx.tracking_uri, ctx.run_id)
        return result

    def __getattr__(self, name: str) -> Any:  # .fn, .name, ... of the Prefect task
        return getattr(self.task, name)


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
        tracking.log_file(ctx.tracking_uri, ctx.run_id, path, artifact_dir)


def stage_task(
    stage: str,
    retries: int = 0,
    retry_delay_seconds: list[float] | None = None,
    key: KeyFn | None = None,
    record: RecordFn | None = None,
) -> Callable:
    """Make `fn` a stage task named `stage` whose failures surface as StageFailed(stage, cause).

    `key` computes the stage's content key from the task's arguments (None: not known before the
    stage runs, e.g. a download's commit). `record` writes a result, computed or cached, into the
    run's MLflow run.
    """

    def decorate(fn: Callable) -> StageTask:
        @functools.wraps(fn)
        def guarded(*args, **kwargs):
            ctx = inspect.signature(fn).bind(*args, **kwargs).arguments.get("ctx")
            with _named_failures(stage, ctx, keep_logs=True):
                result = fn(*args, **kwargs)
            # Reused from the store, or skipped at run time (no Docker daemon): the Prefect UI names the task
            # run's state so, instead of a plain Completed; the flow still gets the StageResult as its data.
            if result.status == "cached":
                return Completed(name="Cached", data=result)
            if result.status == "skipped":
                return Completed(name="Skipped", message=result.summary, data=result)
            return result

        return StageTask(stage, task(
            name=stage,
            retries=retries,
            retry_delay_seconds=retry_delay_seconds or 0,
            retry_condition_fn=_retry_unless_user_error,
            cache_policy=NO_CACHE,  # the store is the cache (engineforge/stage.py)
        )(guarded), key, record)

    return decorate
