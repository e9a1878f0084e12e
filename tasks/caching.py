"""Prefect caching of stage tasks, keyed by the stages' content keys (engineforge/store.py).

A stage task's Prefect cache key is `<stage>-<content key>`; its result (the StageResult manifest)
is persisted beside the outputs, in `<store>/.prefect/results`, so any worker process sharing the
store reuses it: the task run ends `Cached` without running. Records never outlive their data: a
key whose store entry is missing or damaged (engineforge/store.py `intact`) is recomputed (the
record overwritten), as is a `--refresh`ed stage. Task runs hold a SERIALIZABLE transaction on the key: a second worker wanting the same key
waits for the first and then reuses its result; the lock is a flock in `<store>/.prefect/locks`
that dies with its process. A failed stage commits nothing: the store's temporary directory is
discarded (its own atomic rename) and Prefect writes no record. A record names its entry by stage
and key; the path it was written with is replaced by this store's (`relocated`), so a store copied
or mounted elsewhere hands out its own entries, not the old location.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefect.cache_policies import CachePolicy

from engineforge.orchestration.process_locks import ProcessLockManager
from engineforge.stage_result import StageResult
from engineforge.stages.context import RunContext


@dataclass
class ContentKey(CachePolicy):
    """A cache policy whose key was computed by the stage from what determines its output."""

    key: str | None = None

    def compute_key(self, task_ctx, inputs, flow_parameters, **kwargs) -> str | None:
        return self.key


def cache_options(stage: str, key: str, ctx: RunContext) -> dict[str, Any]:
    """Task options that cache `stage` under its content key `key` in the run's store."""
    prefect_dir = ctx.store.root / ".prefect"
    return {
        "cache_policy": ContentKey(key=f"{stage}-{key}", isolation_level="SERIALIZABLE",
                                   lock_manager=ProcessLockManager(prefect_dir / "locks")),
        "result_storage": prefect_dir / "results",  # a path: a local file system block there
        "result_serializer": "json",
        "persist_result": True,
        "refresh_cache": ctx.refreshes(stage) or not ctx.store.intact(stage, key),
    }


def relocated(result: StageResult, ctx: RunContext) -> StageResult:
    """A cached result pointing at its entry in this run's store, wherever the record was written."""
    if result.key is None or result.path is None:
        return result
    return result.model_copy(update={"path": str(ctx.store.entry(result.stage, result.key))})
