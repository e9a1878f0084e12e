"""`engineforge plan --predict`: AIConfigurator's figures for the layouts a recipe would run.

Not a command of its own: plan.py calls it. A sweep recipe's layouts are its variants; any other
recipe's are the planner's feasible candidates.
"""

from __future__ import annotations

from typing import Any

from engineforge.recipe.schema import Recipe


def layouts(recipe: Recipe, result) -> list[tuple[str, Recipe]]:
    if recipe.sweep is not None:
        from engineforge.sweep.expand import expand

        return [(v.name, v.recipe) for v in expand(recipe)]
    chosen = [c for c in result.candidates if c.feasible]
    return [(c.layout.label, recipe.model_copy(update={"parallel": recipe.parallel.model_copy(
        update={"tensor": c.tp, "pipeline": c.pp, "expert": c.ep})})) for c in chosen]


def predictions(recipe: Recipe, model_config: dict[str, Any], result) -> tuple[list, str]:
    from engineforge.predict.ranking import rank

    gpu = result.gpu.name
    return rank(layouts(recipe, result), model_config, gpu), gpu
