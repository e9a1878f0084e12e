"""Running one stage against the content-addressed store, and what a stage returns.

A stage is cached when its key's entry exists; otherwise it runs into a temporary directory
that becomes the entry on success. Stages that do not apply report `skipped` with a reason.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, Field

from engineforge import progress
from engineforge.store import Store, write_manifest

Status = Literal["ran", "cached", "skipped", "failed"]


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


def skipped(stage: str, reason: str) -> StageResult:
    result = StageResult(stage=stage, status="skipped", summary=reason)
    progress.finished(result)
    return result


def run_stage(
    store: Store,
    stage: str,
    key: str,
    produce: Callable[[Path], StageOutput],
    refresh: bool = False,
) -> StageResult:
    """Reuse the entry for `key`, or call `produce(workdir)` and commit its output atomically."""
    progress.started(stage, key)
    started = time.perf_counter()
    if refresh:
        store.discard(stage, key)
    manifest = store.manifest(stage, key)
    status: Status = "cached"
    if manifest is None:
        with store.writing(stage, key) as workdir:
            output = produce(workdir)
            manifest = {"stage": stage, "key": key, "summary": output.summary, "outputs": output.outputs}
            write_manifest(workdir, manifest)
        status = "ran"
    result = StageResult(
        stage=stage,
        status=status,
        key=key,
        path=str(store.entry(stage, key)),
        duration_s=round(time.perf_counter() - started, 3),
        summary=manifest["summary"],
        outputs=manifest["outputs"],
    )
    progress.finished(result)
    return result
