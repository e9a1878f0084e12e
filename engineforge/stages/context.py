"""What every stage of one run needs besides its inputs: the runtime, the store and where to record."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SkipValidation

from engineforge.runtimes.base import Runtime
from engineforge.artifacts.store import Store
from engineforge.tracking.mlflow_runs import TrackedRun


class RunContext(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    runtime: SkipValidation[Runtime] = Field(exclude=True, repr=False)  # resolved once, from recipe.runtime
    store_root: str
    mlflow_run: TrackedRun  # where the stages record
    base_dir: str | None = None  # the recipe file's directory, for relative model paths
    refresh: list[str] = Field(default_factory=list)
    remote_tier: bool = False  # the tracking server's artifacts back the store (tracking.log_engine)
    stage_durations: dict[str, float] = Field(default_factory=dict, exclude=True)  # logged at the run's end (stages/record.py)

    @property
    def store(self) -> Store:
        from engineforge.artifacts.remote_tier import RemoteTier

        return Store(Path(self.store_root), RemoteTier(self.mlflow_run) if self.remote_tier else None)

    def refreshes(self, stage: str) -> bool:
        return stage in self.refresh or "all" in self.refresh
