"""What every task of one run needs besides its inputs: where the store is and where to record."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from engineforge.store import Store


class RunContext(BaseModel):
    store_root: str
    tracking_uri: str
    run_id: str
    base_dir: str | None = None  # the recipe file's directory, for relative model paths
    refresh: list[str] = Field(default_factory=list)

    @property
    def store(self) -> Store:
        return Store(Path(self.store_root))

    def refreshes(self, stage: str) -> bool:
        return stage in self.refresh or "all" in self.refresh
