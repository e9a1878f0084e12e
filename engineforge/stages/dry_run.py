"""`engineforge run RECIPE --dry-run`: every stage's commands and generated files, nothing run.

The recipe is resolved as a run resolves it (the planner fills "auto" sizes); each stage then says
what it would do. Paths are placeholders for the stage's store entry, which exists only once its
inputs are known: `<download>`, `<shard>`, `<build>`, `<validate>` (and `<port>`, `<image>`). Files
are given as their full text, exactly as a run writes them. The output depends only on the recipe,
this engineforge and, where a command uses it, the machine (visible GPUs for trtllm-build --workers,
the TensorRT-LLM version installed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engineforge.recipe import Recipe
from engineforge.runtimes.base import Runtime
from engineforge.stage_plan import DOWNLOAD_DIR, IMAGE, PORT, Command, StagePlan
from engineforge.stages import STAGES, skip_reason


def dry_run(recipe: Recipe, base_dir: Path | None = None) -> dict[str, Any]:
    from engineforge.planner import load_model_config, resolve_parallel
    from engineforge.runtimes import get_runtime

    plan = resolve_parallel(recipe, load_model_config(recipe, base_dir))
    recipe = plan.apply(recipe)
    runtime = get_runtime(recipe.runtime)
    plans = runtime.dry_run(recipe)
    if recipe.quantize is not None:  # shard and build read the quantized checkpoint, not the download
        quantized = "<quantize>/fakequant" if runtime.serves_fake_quantized else "<quantize>/export"
        plans = {name: StagePlan.model_validate_json(plan.model_dump_json().replace(DOWNLOAD_DIR, quantized))
                 for name, plan in plans.items()}
    planners = {"download": lambda: _download(recipe), "quantize": lambda: _quantize(recipe), "shard": lambda: plans["shard"], "build": lambda: plans["build"],
                "validate": lambda: _with_load(recipe, plans["validate"]), "package": lambda: _package(recipe, runtime),
                "register": lambda: _register(recipe)}
    stages = []
    for stage in STAGES:
        if stage == "quantize" and recipe.quantize is None:
            continue  # not part of this recipe's pipeline at all (the flow does not run it)
        reason = skip_reason(stage, recipe, runtime)
        stages.append(planners[stage]() if reason is None else StagePlan(stage=stage, status="skipped", reason=reason))
    p = recipe.parallel
    return {
        "recipe": recipe.name,
        "runtime": recipe.runtime,
        "parallel": {"tp": p.tensor, "pp": p.pipeline, "ep": p.expert, "gpus_per_node": p.gpus_per_node},
        "stages": [stage.model_dump(mode="json", exclude_defaults=False) for stage in stages],
    }


def _download(recipe: Recipe) -> StagePlan:
    return StagePlan(stage="download", notes={"source": recipe.model.source, "model_dir": DOWNLOAD_DIR})


def _quantize(recipe: Recipe) -> StagePlan:
    spec = recipe.quantize
    return StagePlan(stage="quantize", notes={"format": spec.format, "kv_cache": spec.kv_cache, "exclude": spec.exclude,
                                              "calibration": spec.calibration.model_dump(mode="json"),
                                              "export_dir": "<quantize>/export", "fakequant_dir": "<quantize>/fakequant"})


def _with_load(recipe: Recipe, plan: StagePlan) -> StagePlan:
    spec = recipe.validate_
    load = {"endpoint": f"http://127.0.0.1:{PORT}", "api": spec.api, "requests": spec.requests,
            "concurrency": spec.concurrency, "warmup_requests": spec.warmup_requests, "max_tokens": spec.max_tokens}
    return plan.model_copy(update={"notes": {**plan.notes, "load": load}})


def _package(recipe: Recipe, runtime: Runtime) -> StagePlan:
    from engineforge.packaging import MODEL_DIR_IN_IMAGE

    base = runtime.image_base(recipe, None)
    entrypoint = runtime.serve_argv(recipe, Path(MODEL_DIR_IN_IMAGE), "0.0.0.0", recipe.serve.port, recipe.serve.device)
    files = {f"<package>/{name}": text for name, text in runtime.deployment_files(recipe, IMAGE).items()}
    return StagePlan(stage="package", commands=[Command(role="entrypoint", argv=entrypoint, port=recipe.serve.port)],
                     files=files, notes={"base_image": base, "image": recipe.package.image or f"engineforge/{recipe.name}",
                                         "model_dir_in_image": MODEL_DIR_IN_IMAGE})


def _register(recipe: Recipe) -> StagePlan:
    return StagePlan(stage="register", notes={"registered_model": recipe.name, "alias": "candidate"})


def render(planned: dict[str, Any], console) -> None:
    """The dry run as text: per stage, its commands (one argv word per shell-quoted word) and files."""
    import shlex

    p = planned["parallel"]
    console.print(f"{planned['recipe']}: runtime {planned['runtime']}, tp={p['tp']} pp={p['pp']} ep={p['ep']} "
                  f"(gpus_per_node {p['gpus_per_node']}); nothing is run", markup=False)
    for stage in planned["stages"]:
        if stage["status"] == "skipped":
            console.print(f"\n[{stage['stage']}] skipped: {stage['reason']}", markup=False)
            continue
        console.print(f"\n[{stage['stage']}]", markup=False)
        for key, value in stage["notes"].items():
            console.print(f"  {key}: {value}", markup=False)
        for command in stage["commands"]:
            env = " ".join(f"{k}={shlex.quote(v)}" for k, v in command["env"].items())
            console.print(f"  $ {env + ' ' if env else ''}{shlex.join(command['argv'])}", markup=False)
        for name, text in stage["files"].items():
            console.print(f"  --- {name}", markup=False)
            console.print("".join(f"    {line}\n" for line in text.splitlines()), end="", markup=False)
