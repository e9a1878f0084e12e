"""`sweep: {layouts: auto}` on a TensorRT-LLM recipe takes the feasible layouts in AIConfigurator's order."""

from pathlib import Path

import pytest

from engineforge.planner import load_model_config, plan
from engineforge.predict import NoPrediction, predict
from engineforge.recipe.file import parse_recipe
from engineforge.sweep.plan import plan_sweep

pytest.importorskip("aiconfigurator.cli.api", reason="the predict extra is not installed")
RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "trtllm-llama70b-sweep.yaml"


def test_layouts_auto_are_the_best_predicted_feasible_layouts():
    text = RECIPE.read_text().split("sweep:")[0] + "sweep:\n  layouts: auto\n  top_k: 2\n"
    recipe = parse_recipe(text)
    chosen = plan_sweep(recipe, gpu="H200").variants
    assert len(chosen) == 2
    config = load_model_config(recipe)
    auto = recipe.model_copy(update={"parallel": recipe.parallel.model_copy(update={"tensor": "auto", "pipeline": "auto",
                                                                                     "expert": "auto"})})
    per_gpu = {}
    for candidate in plan(auto, config, gpu="H200").candidates:
        if candidate.feasible:
            layout = recipe.model_copy(update={"parallel": recipe.parallel.model_copy(
                update={"tensor": candidate.tp, "pipeline": candidate.pp, "expert": candidate.ep})})
            outcome = predict(layout, config, "H200")
            if not isinstance(outcome, NoPrediction):
                per_gpu[(candidate.tp, candidate.pp)] = outcome.output_tokens_per_s_per_gpu
    best_two = sorted(per_gpu, key=per_gpu.get, reverse=True)[:2]
    assert [(v.recipe.parallel.tensor, v.recipe.parallel.pipeline) for v in chosen] == best_two
