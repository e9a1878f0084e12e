"""The one decorator every stage task shares: Prefect options plus errors named by stage."""

from __future__ import annotations

import functools
from typing import Callable

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from engineforge.errors import StageFailed, UserError


def _retry_unless_user_error(task, task_run, state) -> bool:
    # Retrying cannot fix bad input (a missing repository, a wrong path); it only delays the error.
    error = state.result(raise_on_failure=False)
    return not (isinstance(error, StageFailed) and error.user_error)


def stage_task(stage: str, retries: int = 0, retry_delay_seconds: list[float] | None = None) -> Callable:
    """Make `fn` a Prefect task named `stage` whose failures surface as StageFailed(stage, cause).

    Caching is the content-addressed store's job (engineforge.store), so Prefect's is off.
    """

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def guarded(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except StageFailed:
                raise
            except UserError as error:
                raise StageFailed(stage, str(error), user_error=True) from error
            except Exception as error:
                get_run_logger().exception("stage %s failed", stage)
                raise StageFailed(stage, f"{type(error).__name__}: {error}") from error

        return task(
            name=stage,
            retries=retries,
            retry_delay_seconds=retry_delay_seconds or 0,
            retry_condition_fn=_retry_unless_user_error,
            cache_policy=NO_CACHE,
        )(guarded)

    return decorate
