"""download: make the recipe's checkpoint available locally and pin its exact revision."""

from __future__ import annotations

from pathlib import Path

from engineforge.stages import progress
from engineforge.sources import synthetic
from engineforge.recipe.schema import Recipe
from engineforge.runtimes.base import Runtime
from engineforge.sources.model_source import (
    HubSource,
    LocalSource,
    SyntheticSource,
    digest_revision,
    download_hub_model,
    hub_bytes_to_fetch,
    local_model_digests,
    parse_source,
    resolve_hub_revision,
)
from engineforge.stages.run_stage import run_stage
from engineforge.stage_plan import DOWNLOAD_DIR, StagePlan
from engineforge.stage_result import StageOutput, StageResult
from engineforge.stages.context import RunContext
from engineforge.stages.stage import Stage
from engineforge.artifacts.store import Store, content_key, file_digests, require_free_space
from engineforge.versions import package_version

STAGE = "download"


def download(recipe: Recipe, ctx: RunContext) -> StageResult:
    """No key before it runs: a download's key is the content it finds (the hub's commit, the files' hashes)."""
    store, refresh = ctx.store, ctx.refreshes(STAGE)
    source = parse_source(recipe.model, Path(ctx.base_dir) if ctx.base_dir else None)
    if isinstance(source, HubSource):
        sha = resolve_hub_revision(source)
        key = content_key(STAGE, "hf", source.repo, sha)
        return run_stage(store, STAGE, key, lambda workdir: _hub(source, sha), refresh)
    if isinstance(source, LocalSource):
        digests = local_model_digests(source)
        key = content_key(STAGE, "local", digests)
        output = StageOutput(
            summary=f"local {source.path} ({len(digests)} files)",
            outputs={"model_dir": str(source.path), "revision": digest_revision(digests), "files": digests},
        )
        return run_stage(store, STAGE, key, lambda workdir: output, refresh)
    return _synthetic(recipe, source, store, refresh)


def _hub(source: HubSource, sha: str) -> StageOutput:
    needed, cache = hub_bytes_to_fetch(source, sha)
    require_free_space(cache, STAGE, needed, "HF_HUB_CACHE")  # the weights land in the hub cache, not the store
    # The total from the hub's file list: huggingface_hub's own grows as it starts each file.
    model_dir = download_hub_model(source, sha, on_bytes=lambda done, total: progress.counted(
        STAGE, done, max(needed, total or 0), "bytes"))
    digests = file_digests(model_dir)
    return StageOutput(
        summary=f"{source.repo}@{sha[:12]} ({len(digests)} files)",
        outputs={"model_dir": str(model_dir), "revision": sha, "files": digests, "repo": source.repo},
    )


def _synthetic(recipe: Recipe, source: SyntheticSource, store: Store, refresh: bool) -> StageResult:
    spec = recipe.model.synthetic
    dtype = recipe.model.dtype
    # The generator's output depends on its own code and on transformers' config serialisation.
    key = content_key(STAGE, "synthetic", spec.model_dump(mode="json"), dtype, package_version("engineforge"),
                      package_version("transformers"))

    def produce(workdir: Path) -> StageOutput:
        synthetic.write_synthetic_model(spec, workdir / "model", dtype)
        digests = file_digests(workdir / "model")
        return StageOutput(
            summary=f"synthetic {source.name} ({spec.architecture}, {spec.num_hidden_layers} layers)",
            outputs={"model_dir": "model", "revision": digest_revision(digests), "files": digests},
        )

    return run_stage(store, STAGE, key, produce, refresh)


def plan(recipe: Recipe, runtime: Runtime, plans: dict[str, StagePlan]) -> StagePlan:
    return StagePlan(stage=STAGE, notes={"source": recipe.model.source, "model_dir": DOWNLOAD_DIR})


# No key before it runs: a download's key is the content it finds (the hub's commit, the files' hashes).
DOWNLOAD = Stage(
    name=STAGE,
    work=lambda recipe, ctx, key: download(recipe, ctx),
    plan=plan,
    retries=(5, 30, 120),  # the hub and mirrors fail transiently
)
