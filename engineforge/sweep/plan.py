"""Everything about a sweep that is known before any work: its variants, each checked by the planner.
Their predictions wait for the runs (engineforge/sweep/predictions.py): only a run knows its GPU."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engineforge.errors import UserError
from engineforge.quantize.support import check_servable
from engineforge.recipe.schema import Recipe
from engineforge.runtime_traits import runtime_traits
from engineforge.sweep.expand import Variant, expand



@dataclass
class PlannedSweep:
    variants: list[Variant]
    model_config: dict
    predicts: bool  # AIConfigurator models this runtime
    notes: list[str] = field(default_factory=list)  # one line per thing the table cannot show, and why


def plan_sweep(recipe: Recipe, base_dir: Path | None = None, gpu: str | None = None) -> PlannedSweep:
    """Expand and check every variant (UserError naming the first bad one)."""
    from engineforge.planner import load_model_config, plan, resolve_parallel

    config = load_model_config(recipe, base_dir)
    predicts = runtime_traits(recipe.runtime).tensorrt_llm  # what AIConfigurator models (TensorRT-LLM, not transformers serve)
    layouts = None
    if recipe.sweep.layouts == "auto":
        planned_layouts = plan(recipe.model_copy(update={"parallel": _auto(recipe)}), config, gpu=gpu)
        layouts = [{"tensor": c.tp, "pipeline": c.pp, "expert": c.ep} for c in planned_layouts.candidates if c.feasible]
        if predicts:  # AIConfigurator's order where it predicts; else the planner's
            layouts = _by_prediction(recipe, config, planned_layouts.gpu.name, layouts)
        layouts = layouts[: recipe.sweep.top_k]
    variants = expand(recipe, layouts, base_dir)
    for variant in variants:
        try:
            # The layout, then what it serves (a swept quantize.format this runtime or GPU cannot serve).
            check_servable(resolve_parallel(variant.recipe, config, gpu=gpu).apply(variant.recipe))
        except UserError as error:
            raise UserError(f"sweep variant {variant.name}: {error}") from None
    planned = PlannedSweep(variants, config, predicts=predicts)
    if not planned.predicts:
        planned.notes.append(f"No predictions: AIConfigurator models TensorRT-LLM, vLLM and SGLang, "
                             f"not the {recipe.runtime} runtime.")
    return planned


def _by_prediction(recipe: Recipe, config: dict, gpu: str, layouts: list[dict[str, int]]) -> list[dict[str, int]]:
    from engineforge.predict.ranking import rank

    labelled = [(index, recipe.model_copy(update={"parallel": recipe.parallel.model_copy(update=layout)}))
                for index, layout in enumerate(layouts)]
    return [layouts[ranked.label] for ranked in rank(labelled, config, gpu)]  # stable: unpredicted keep their order


def _auto(recipe: Recipe):
    return recipe.parallel.model_copy(update={"tensor": "auto", "pipeline": "auto", "expert": "auto"})

