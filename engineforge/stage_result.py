"""What a stage returns: where its output is and what it found (the manifest the next stage reads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

Status = Literal["ran", "cached", "fetched", "skipped", "failed"]  # fetched: from the remote tier


class StageResult(BaseModel):
    """The manifest a stage hands to the next one: where its output is, and what it found."""

    stage: str
    status: Status
    key: str | None = None
    path: str | None = None
    duration_s: float = 0.0
    summary: str = ""
    outputs: dict[str, Any] = Field(default_factory=dict)

    def file(self, name: str) -> Path:
        """A path output, relative ones taken inside the stage's store entry."""
        return Path(self.path or ".") / self.outputs[name]


class StageOutput(BaseModel):
    summary: str
    outputs: dict[str, Any] = Field(default_factory=dict)
    skipped: bool = False  # the stage looked and could not apply (e.g. no Docker daemon): said, not hidden
