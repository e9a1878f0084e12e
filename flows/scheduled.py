"""A recipe from this checkout, on a schedule: the flow behind prefect.yaml's scheduled deployments.

Schedules name the recipe by its path in the clone the worker runs from (one parameter per
schedule); the recipe's content then goes to model-to-deployment like a submitted one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from engineforge.recipe.file import load_recipe
from flows.model_to_deployment import model_to_deployment


@flow(name="scheduled-recipe", log_prints=True)
def scheduled_recipe(recipe: str = "recipes/tiny-llama.yaml", refresh: list[str] | None = None) -> dict[str, Any]:
    """Run the recipe file at `recipe` (relative to the checkout) end to end."""
    path = Path(recipe)
    load_recipe(path)  # a missing or broken file fails here with the file and line
    return model_to_deployment(
        recipe_yaml=path.read_text(encoding="utf-8"),
        recipe_origin=recipe,
        base_dir=str(path.resolve().parent),
        refresh=refresh,
    )
