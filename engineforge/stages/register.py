"""register: the built artifact becomes a version of the recipe's MLflow registered model.

The version points at the engine logged as run artifacts (`runs:/<run>/engine`, tracking.log_engine)
or, for one host, at the content-addressed build output (no gigabyte copies), and carries its content key; a rerun with the same key reuses the version instead of adding a duplicate.
"""

from __future__ import annotations

import time
from pathlib import Path

from engineforge.stages import progress
from engineforge.tracking import mlflow_runs
from engineforge.artifacts import transfer
from engineforge.artifacts.remote_tier import artifact_path
from engineforge.tracking.mlflow_tags import IMAGE_DIGEST_TAG, MODEL_REVISION_TAG, RUNTIME_TAG, manifest_sha256
from engineforge.recipe.schema import Recipe
from engineforge.stage_plan import StagePlan
from engineforge.stage_result import StageResult
from engineforge.stages.context import RunContext
from engineforge.stages.stage import Stage, switch

STAGE = "register"


def register(recipe: Recipe, built: StageResult, packaged: StageResult | None, model: StageResult, ctx: RunContext) -> StageResult:
    progress.started(STAGE, built.key)
    started = time.perf_counter()
    tags = {MODEL_REVISION_TAG: str(model.outputs.get("revision")), RUNTIME_TAG: recipe.runtime}
    if packaged is not None and packaged.outputs.get("digest"):
        tags[IMAGE_DIGEST_TAG] = packaged.outputs["digest"]
    run_id, source, pinned = _source(built, ctx)
    version, reused = ctx.mlflow_run.register_version(recipe.name, source, built.key, {**tags, **pinned}, source_run=run_id)
    return StageResult(
        stage=STAGE,
        status="cached" if reused else "ran",
        key=built.key,
        duration_s=round(time.perf_counter() - started, 3),
        summary=f"{recipe.name} version {version} @{mlflow_runs.CANDIDATE_ALIAS}",
        outputs={"model_name": recipe.name, "version": version, "alias": mlflow_runs.CANDIDATE_ALIAS},
    )


def _source(built: StageResult, ctx: RunContext) -> tuple[str, str, dict[str, str]]:
    """(run id, source, tags that pin it): the run that logged the engine, its `runs:/` URI, which any
    host can pull, and its MANIFEST.json digest as that run recorded it (the version's own copy, which
    `engineforge pull` checks); without the remote tier (tracking.log_engine never, a local tracking
    URI) this host's store entry, which nothing pulls."""
    if ctx.remote_tier:
        run_id = ctx.store.remote.logged_by("build", built.key)
        if run_id is None:
            raise RuntimeError(f"build {built.key[:12]} was not logged to {ctx.mlflow_run.uri}; nothing registered")
        source = f"runs:/{run_id}/{artifact_path('build')}"
        digest = transfer.recorded_manifest_digest(ctx.mlflow_run.uri, source, "build")
        return run_id, source, {manifest_sha256("build"): digest} if digest else {}
    return ctx.mlflow_run.run_id, Path(built.path).as_uri(), {}


REGISTER = Stage(
    name=STAGE,
    work=lambda recipe, ctx, key, built, packaged, model: register(recipe, built, packaged, model, ctx),
    plan=lambda recipe, runtime, plans: StagePlan(stage=STAGE, notes={"registered_model": recipe.name, "alias": "candidate"}),
    unless=switch("tracking.register_model", lambda recipe: recipe.tracking.register_model),
    retries=(5, 30),  # a remote tracking server may blink
)
