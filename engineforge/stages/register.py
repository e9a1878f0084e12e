"""register: the built artifact becomes a version of the recipe's MLflow registered model.

The version points at the content-addressed build output (no gigabyte copies) and carries its
content key; a rerun with the same key reuses the version instead of adding a duplicate.
"""

from __future__ import annotations

import time
from pathlib import Path

from engineforge import progress, tracking
from engineforge.recipe import Recipe
from engineforge.stage_result import StageResult
from engineforge.stages.context import RunContext

STAGE = "register"


def register(recipe: Recipe, built: StageResult, packaged: StageResult | None, model: StageResult, ctx: RunContext) -> StageResult:
    progress.started(STAGE, built.key)
    started = time.perf_counter()
    tags = {"engineforge.model_revision": str(model.outputs.get("revision")), "engineforge.runtime": recipe.runtime}
    if packaged is not None and packaged.outputs.get("digest"):
        tags["engineforge.image_digest"] = packaged.outputs["digest"]
    version, reused = tracking.register_version(
        ctx.tracking_uri, ctx.run_id, recipe.name, Path(built.path).as_uri(), built.key, tags
    )
    result = StageResult(
        stage=STAGE,
        status="cached" if reused else "ran",
        key=built.key,
        duration_s=round(time.perf_counter() - started, 3),
        summary=f"{recipe.name} version {version} @{tracking.CANDIDATE_ALIAS}",
        outputs={"model_name": recipe.name, "version": version, "alias": tracking.CANDIDATE_ALIAS},
    )
    progress.finished(result)
    return result
