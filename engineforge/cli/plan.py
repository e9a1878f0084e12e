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
    predict: bool = typer.Option(False, "--predict", help="Also AIConfigurator's predicted TTFT, TPOT and tok/s per GPU for each layout (a sweep recipe: each variant), best first (needs engineforge[predict])."),
) -> int:
    """Plan tensor/pipeline/expert parallel sizes for a recipe: every layout, its memory per GPU, and the choice."""
    from engineforge.planner import load_model_config, plan
    from engineforge.planner.report import render, to_json
    from engineforge.recipe_file import load_recipe

    loaded = load_recipe(recipe)
    result = plan(
        loaded, load_model_config(loaded), gpu=gpu, gpus=gpus, gpus_per_node=gpus_per_node, objective=objective
    )
    predicted = None
    if predict:
        from engineforge.cli.predict_output import predictions

        predicted = predictions(loaded, load_model_config(loaded), result)
    if as_json:
        from engineforge.predict.ranking import to_json as predictions_json

        print(json.dumps(to_json(result) | ({"predictions": predictions_json(*predicted)} if predicted else {}), indent=2))
    else:
        render(result, Console(highlight=False, soft_wrap=True))
        if predicted:
            from engineforge.predict.ranking import render as render_predictions

            render_predictions(*predicted, Console(highlight=False, soft_wrap=True))
    if result.chosen is None:
        raise UserError(result.reason)
    return 0
