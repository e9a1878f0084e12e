"""shard: split a Hugging Face checkpoint into a TensorRT-LLM checkpoint (engine runtime only)."""

from __future__ import annotations

from engineforge.recipe import Recipe
from engineforge.runtimes import get_runtime
from engineforge.stage import skipped
from engineforge.stage_result import StageResult
from engineforge.store import Store

STAGE = "shard"


def shard(recipe: Recipe, model: StageResult, store: Store, refresh: bool = False) -> StageResult:
    runtime = get_runtime(recipe.runtime)
    if STAGE not in runtime.stages:
        return skipped(STAGE, runtime.skip_reason(STAGE))
    return runtime.shard(recipe, model, store, refresh)
