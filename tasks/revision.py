from prefect import task
from prefect.cache_policies import NO_CACHE

from engineforge.errors import EngineForgeError
from engineforge.sources import HubSource, resolve_hub_revision


def _retry_unless_user_error(task, task_run, state) -> bool:
    error = state.result(raise_on_failure=False)
    return not (isinstance(error, EngineForgeError) and not error.retryable)  # a missing repo stays missing


@task(name="hub-commit", retries=3, retry_delay_seconds=[5, 30, 120], retry_condition_fn=_retry_unless_user_error,
      cache_policy=NO_CACHE)
def hub_commit_task(source: HubSource) -> str:
    """The commit a moving revision points at now (the hub and mirrors fail transiently)."""
    return resolve_hub_revision(source)
