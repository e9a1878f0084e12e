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

from engineforge.recipe.schema import Recipe
from engineforge.stage_plan import DOWNLOAD_DIR, StagePlan
from engineforge.stages.pipeline import STAGES
from engineforge.stages.quantize import QUANTIZE


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
    stages = []
    for stage in STAGES:
        if stage is QUANTIZE and recipe.quantize is None:
            continue  # not part of this recipe's pipeline at all (the flow does not run it)
        reason = stage.skip_reason(recipe, runtime)
        stages.append(stage.plan(recipe, runtime, plans) if reason is None
                      else StagePlan(stage=stage.name, status="skipped", reason=reason))
    p = recipe.parallel
    return {
        "recipe": recipe.name,
        "runtime": recipe.runtime,
        "parallel": {"tp": p.tensor, "pp": p.pipeline, "ep": p.expert, "gpus_per_node": p.gpus_per_node},
        "stages": [stage.model_dump(mode="json", exclude_defaults=False) for stage in stages],
    }


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
