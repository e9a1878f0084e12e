import json
from pathlib import Path

import typer
from rich.console import Console

from engineforge.errors import UserError


def command(
    recipe: Path = typer.Argument(..., help="Recipe YAML file."),
    gpu: str | None = typer.Option(None, "--gpu", help="GPU model (H100-SXM, H100-PCIe, H200, A100-40GB, A100-80GB, L40S, B200); default: detected through NVML, else H100-SXM."),
    gpus: int | None = typer.Option(None, "--gpus", help="GPUs in the pool; default: detected, else one node."),
    gpus_per_node: int | None = typer.Option(None, "--gpus-per-node", help="Default: the recipe's parallel.gpus_per_node."),
    # A plain string checked by the planner: a bad value is then a one-line UserError (exit 2).
    objective: str = typer.Option("throughput", "--objective", help="throughput: fewest GPUs per replica first; latency: lowest decode floor (most tensor parallelism inside a node) first."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> int:
    """Plan tensor/pipeline/expert parallel sizes for a recipe: every layout, its memory per GPU, and the choice."""
    from engineforge.planner import load_model_config, plan
    from engineforge.planner.report import render, to_json
    from engineforge.recipe_file import load_recipe

    loaded = load_recipe(recipe)
    result = plan(
        loaded, load_model_config(loaded), gpu=gpu, gpus=gpus, gpus_per_node=gpus_per_node, objective=objective
    )
    if as_json:
        print(json.dumps(to_json(result), indent=2))
    else:
        render(result, Console(highlight=False, soft_wrap=True))
    if result.chosen is None:
        raise UserError(result.reason)
    return 0
