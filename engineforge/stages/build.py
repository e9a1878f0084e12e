"""build: turn the downloaded (or sharded) checkpoint into what the runtime serves."""

from __future__ import annotations

import shutil
from pathlib import Path

from engineforge.recipe import Recipe
from engineforge.runtimes import get_runtime
from engineforge.runtimes.base import BUILD_LOG
from engineforge.stage import StageOutput, StageResult, run_stage
from engineforge.store import Store, content_key

STAGE = "build"


def build(recipe: Recipe, model: StageResult, store: Store, refresh: bool = False) -> StageResult:
    runtime = get_runtime(recipe.runtime)
    key = content_key(
        STAGE, runtime.name, model.key, recipe.section("build"), recipe.section("parallel"),
        recipe.model.dtype, runtime.key_versions(),
    )

    def produce(workdir: Path) -> StageOutput:
        try:
            return runtime.build(recipe, model, workdir)
        except BaseException:
            if (workdir / BUILD_LOG).exists():  # the workdir is discarded; the tool's words are kept
                shutil.copyfile(workdir / BUILD_LOG, failure_log(store))
            raise

    return run_stage(store, STAGE, key, produce, refresh)


def failure_log(store: Store) -> Path:
    """Where a failed build's tool log is kept (the stage's own directory is discarded)."""
    path = store.root / "logs" / f"{STAGE}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
