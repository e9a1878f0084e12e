"""build: turn the downloaded (or sharded) checkpoint into what the runtime serves."""

from __future__ import annotations

from engineforge.recipe import Recipe
from engineforge.runtimes import get_runtime
from engineforge.runtimes.base import BUILD_LOG
from engineforge.stage import run_stage
from engineforge.stage_result import StageResult
from engineforge.store import Store, content_key

STAGE = "build"


def build_key(recipe: Recipe, model: StageResult) -> str:
    """The build's content key (also its Prefect cache key): what determines the built output."""
    runtime = get_runtime(recipe.runtime)
    return content_key(
        STAGE, runtime.name, model.key, recipe.section("build"), recipe.section("parallel"),
        recipe.model.dtype, runtime.key_versions(),
    )


def build(recipe: Recipe, model: StageResult, store: Store, refresh: bool = False) -> StageResult:
    runtime = get_runtime(recipe.runtime)
    key = build_key(recipe, model)
    return run_stage(
        store, STAGE, key, lambda workdir: runtime.build(recipe, model, workdir), refresh, keep_on_failure=(BUILD_LOG,)
    )
