from prefect import task
from prefect.cache_policies import NO_CACHE

from engineforge.sources.model_source import HubSource, resolve_hub_revision
from tasks.stage import retry_unless_user_error


@task(name="hub-commit", retries=3, retry_delay_seconds=[5, 30, 120], retry_condition_fn=retry_unless_user_error,
      cache_policy=NO_CACHE)
def hub_commit_task(source: HubSource) -> str:
    """The commit a moving revision points at now (the hub and mirrors fail transiently; a missing repo stays missing)."""
    return resolve_hub_revision(source)
