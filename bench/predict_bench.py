"""AIConfigurator's cost in one process: import, the first estimate (loads the perf database), later
estimates with the backend version pinned, and one estimate left unpinned (what engineforge avoids).

    python bench/predict_bench.py      # prints one JSON object; figures in seconds
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from engineforge.planner import load_model_config
from engineforge.predict import predict
from engineforge.recipe.file import load_recipe
from engineforge.sweep.expand import expand

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "trtllm-llama70b-sweep.yaml"


def seconds(call) -> float:
    started = time.perf_counter()
    call()
    return round(time.perf_counter() - started, 3)


def main() -> int:
    recipe = load_recipe(RECIPE)
    config = load_model_config(recipe)
    variants = [v.recipe for v in expand(recipe) if v.gpus > 1]
    figures = {"import_s": seconds(lambda: __import__("aiconfigurator.cli.api"))}
    figures["first_estimate_s"] = seconds(lambda: predict(variants[0], config, "H200"))
    figures["next_estimates_s"] = [seconds(lambda v=v: predict(v, config, "H200")) for v in variants]

    from aiconfigurator.cli.api import cli_estimate

    from engineforge.predict.aiconfigurator import _model_dir, estimate_args

    args = estimate_args(variants[0], "H200") | {"backend_version": None}  # unpinned: latest looked up per call
    figures["unpinned_estimate_s"] = seconds(lambda: cli_estimate(_model_dir(json.dumps(config, sort_keys=True)), **args))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
