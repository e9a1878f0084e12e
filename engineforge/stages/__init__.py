"""What each pipeline stage does, as plain functions over typed values (tasks/ wraps them).

Each stage module owns its content key (`<stage>_key`, computed once per run by the task and handed
to the stage) and its work; whether a stage applies at all is decided here, once, for the flow and
for `run --dry-run` alike.
"""

from __future__ import annotations

from engineforge.recipe import Recipe
from engineforge.runtimes.base import Runtime

STAGES = ("download", "quantize", "shard", "build", "validate", "package", "register")


def skip_reason(stage: str, recipe: Recipe, runtime: Runtime) -> str | None:
    """Why `stage` does not apply to `recipe` (shown in the run table), or None when it runs."""
    if stage == "quantize":  # any runtime, when the recipe asks (engineforge.quantize.support refuses what cannot serve)
        return None if recipe.quantize is not None else "no quantize section in the recipe"
    if stage not in runtime.stages:
        return runtime.skip_reason(stage)
    switches = {"validate": (recipe.validate_.enabled, "validate.enabled"),
                "package": (recipe.package.enabled, "package.enabled"),
                "register": (recipe.tracking.register_model, "tracking.register_model")}
    enabled, field = switches.get(stage, (True, ""))
    return None if enabled else f"{field} is false"
