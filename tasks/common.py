"""The one decorator every stage task shares: Prefect options, GPU slots, errors named by stage."""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from engineforge import gpu_slots, run_artifacts, tracking
from engineforge.errors import StageFailed, UserError
from engineforge.run_context import RunContext


def _retry_unless_user_error(task, task_run, state) -> bool:
    # Retrying cannot fix bad input (a missing repository, a wrong path); it only delays the error.
    error = state.result(raise_on_failure=False)
    return not (isinstance(error, StageFailed) and error.user_error)


class StageTask:
    """A stage's Prefect task as the flow calls it: the GPU slots the stage uses are held around the
    task run (engineforge/gpu_slots.py), so the run's start and end bound its use of the GPUs."""

    def __init__(self, stage: str, prefect_task):
        self.stage = stage
        self.task = prefect_task
        self._signature = inspect.signature(prefect_task.fn)

    def with_options(self, **options: Any) -> "StageTask":
        return StageTask(self.stage, self.task.with_options(**options))

    def __call__(self, *args: Any, **kwargs: Any):
        recipe = self._signature.bind(*args, **kwargs).arguments["recipe"]
        with gpu_slots.holding_gpus(self.stage, gpu_slots.gpus_needed(self.stage, recipe)):
            return self.task(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # .fn, .name, ... of the Prefect task
        return getattr(self.task, name)


def _record_failure_logs(stage: str, ctx: RunContext | None) -> None:
    """The logs a failed stage kept (server, build tool, container) go to its MLflow run: they are
    the best clue to what went wrong, and the stage's own directory was discarded."""
    if ctx is None:
        return
    kept = ctx.store.failure_dir(stage)
    for path in sorted(p for p in kept.rglob("*") if p.is_file()):
        artifact_dir = f"{stage}/failed/{path.parent.relative_to(kept)}".rstrip("/.")
        tracking.log_file(ctx.tracking_uri, ctx.run_id, path, artifact_dir)


def stage_task(stage: str, retries: int = 0, retry_delay_seconds: list[float] | None = None) -> Callable:
    """Make `fn` a stage task named `stage` whose failures surface as StageFailed(stage, cause).

    Caching is the content-addressed store's job (engineforge.store), so Prefect's is off.
    """

    def decorate(fn: Callable) -> StageTask:
        @functools.wraps(fn)
        def guarded(*args, **kwargs):
            try:
                with run_artifacts.stage_progress(stage):
                    return fn(*args, **kwargs)
            except Exception as error:
                _record_failure_logs(stage, inspect.signature(fn).bind(*args, **kwargs).arguments.get("ctx"))
                if isinstance(error, StageFailed):
                    raise
                if isinstance(error, UserError):
                    raise StageFailed(stage, str(error), user_error=True) from error
                get_run_logger().exception("stage %s failed", stage)
                raise StageFailed(stage, f"{type(error).__name__}: {error}") from error

        return StageTask(stage, task(
            name=stage,
            retries=retries,
            retry_delay_seconds=retry_delay_seconds or 0,
            retry_condition_fn=_retry_unless_user_error,
            cache_policy=NO_CACHE,
        )(guarded))

    return decorate
