"""package: the serving image for the built model (Dockerfile always; image when a daemon answers)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from engineforge.processes.environment import model_server_environment
from engineforge.recipe.schema import Recipe
from engineforge.runtimes.base import Runtime
from engineforge.stages.run_stage import run_stage
from engineforge.stage_plan import IMAGE, Command, StagePlan, write_files
from engineforge.stage_result import StageOutput, StageResult
from engineforge.stages.context import RunContext
from engineforge.stages.record import record_stage
from engineforge.stages.stage import Stage, switch
from engineforge.artifacts.store import content_key

STAGE = "package"


def package(
    recipe: Recipe, built: StageResult, model: StageResult, lock_sha256: str, ctx: RunContext, key: str,
    quantized: StageResult | None = None,
) -> StageResult:
    from engineforge.packaging import MODEL_DIR_IN_IMAGE, PackageInputs, package_model

    runtime = ctx.runtime
    base_image = runtime.image_base(recipe, built)  # TensorRT-LLM: the release image of the version that built
    # The key says whether a daemon answered (it is the key computed with one answering). One that stopped
    # answering since must fail the stage, not leave a "skipped" entry under a key that says a daemon was
    # there (it would be reused once it is back).
    expects_daemon = key == _key(recipe, built, runtime, daemon_answered=True)
    inputs = PackageInputs(
        recipe_name=recipe.name,
        runtime=runtime.name,
        key=key,
        model_dir=built.file("served_dir"),
        serve_argv=runtime.serve_argv(recipe, Path(MODEL_DIR_IN_IMAGE), "0.0.0.0", recipe.serve.port, recipe.serve.device),
        port=recipe.serve.port,
        base_image=base_image,
        image_repo=recipe.package.image,
        registry=recipe.package.registry,
        python_requirements=runtime.image_requirements(recipe),
        labels=_labels(recipe, built, model, lock_sha256, quantized),
        environment=model_server_environment(recipe.serve.hub_kernels),
        gpu=runtime.image_gpu,
        smoke_timeout_s=recipe.serve.startup_timeout_s,
        require_daemon=expects_daemon,
    )

    def produce(workdir: Path) -> StageOutput:
        result = package_model(inputs, workdir)
        outputs: dict[str, Any] = result.model_dump(mode="json")
        deployment = runtime.deployment_files(recipe, result.pushed_ref or result.image_tag)  # compose.yaml ...
        if deployment:
            write_files(workdir, deployment)
            outputs["deployment_files"] = sorted(deployment)
        if result.status == "skipped":
            return StageOutput(summary=result.reason, outputs=outputs, skipped=True)
        return StageOutput(summary=f"{result.image_tag} {result.digest or result.image_id}", outputs=outputs)

    # Build and container logs of a failed build or smoke test (the image is then never pushed).
    return run_stage(ctx.store, STAGE, key, produce, ctx.refreshes(STAGE), keep_on_failure=("logs",))


def package_key(recipe: Recipe, built: StageResult, runtime: Runtime) -> str:
    """The image's content key."""
    from engineforge.packaging.daemon import connect

    # Whether a daemon answers is part of the key: a run without Docker must not pin "skipped" once
    # one is started (a short ping; the build itself connects with a long timeout).
    return _key(recipe, built, runtime, daemon_answered=connect(timeout_s=5)[0] is not None)


def _key(recipe: Recipe, built: StageResult, runtime: Runtime, daemon_answered: bool) -> str:
    from engineforge.packaging.daemon import daemon_address

    # The recipe's name is in the key: it names the image and its labels, so two recipes with equal
    # inputs get an image each.
    return content_key(STAGE, recipe.name, built.key, recipe.section("package"), recipe.section("serve"), runtime.name,
                       runtime.image_requirements(recipe), daemon_address(), daemon_answered,
                       runtime.image_base(recipe, built))


def _labels(recipe: Recipe, built: StageResult, model: StageResult, lock_sha256: str,
            quantized: StageResult | None) -> dict[str, str]:
    from engineforge.artifacts.lockfile import quantization_record

    built_with = built.outputs.get("tensorrt_llm_version")
    # A quantized image says what quantized it, as its lock file does (format, ModelOpt, calibration data).
    quantization = {f"ai.engineforge.quantize.{name.replace('_', '-')}": str(value)
                    for name, value in quantization_record(quantized).items()} if quantized else {}
    return ({"ai.engineforge.tensorrt-llm-built-with": str(built_with)} if built_with else {}) | quantization | {
        "ai.engineforge.recipe": recipe.name,
        "ai.engineforge.runtime": recipe.runtime,
        "ai.engineforge.lock-sha256": lock_sha256,
        "ai.engineforge.model-source": recipe.model.source,
        "ai.engineforge.model-revision": str(model.outputs.get("revision")),
        "ai.engineforge.serve.hub-kernels": "on" if recipe.serve.hub_kernels else "off",
    }


def record(recipe: Recipe, ctx: RunContext, result: StageResult) -> None:
    record_stage(ctx, result)
    if "dockerfile" in result.outputs:  # as Dockerfile.txt: MLflow's UI previews files by their extension
        with tempfile.TemporaryDirectory() as directory:
            shown = Path(directory) / "Dockerfile.txt"
            shutil.copyfile(result.file("dockerfile"), shown)
            ctx.mlflow_run.log_file(shown, STAGE)


def plan(recipe: Recipe, runtime: Runtime, plans: dict[str, StagePlan]) -> StagePlan:
    from engineforge.packaging import MODEL_DIR_IN_IMAGE

    base = runtime.image_base(recipe, None)
    entrypoint = runtime.serve_argv(recipe, Path(MODEL_DIR_IN_IMAGE), "0.0.0.0", recipe.serve.port, recipe.serve.device)
    files = {f"<package>/{name}": text for name, text in runtime.deployment_files(recipe, IMAGE).items()}
    return StagePlan(stage=STAGE, commands=[Command(role="entrypoint", argv=entrypoint, port=recipe.serve.port)],
                     files=files, notes={"base_image": base, "image": recipe.package.image or f"engineforge/{recipe.name}",
                                         "model_dir_in_image": MODEL_DIR_IN_IMAGE})


PACKAGE = Stage(
    name=STAGE,
    key=lambda recipe, ctx, built, **rest: package_key(recipe, built, ctx.runtime),
    work=lambda recipe, ctx, key, built, model, lock_sha256, quantized=None: package(
        recipe, built, model, lock_sha256, ctx, key, quantized),
    record=record,
    plan=plan,
    unless=switch("package.enabled", lambda recipe: recipe.package.enabled),
    retries=(10,),  # pushes blink
)
