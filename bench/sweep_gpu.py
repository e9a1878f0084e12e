"""A sweep's variants of the transformers runtime measured on a GPU, without Prefect or MLflow.

The device machine has neither, so this runs what each child `model-to-deployment` run would run
(download -> build -> validate, the real stage functions against a private store) for every variant
of one sweep recipe, then builds the sweep's comparison table and Pareto plot from the figures, as the
sweep flow does from MLflow. Model: TinyLlama-1.1B-shaped synthetic Llama (random weights).

    python bench/sweep_gpu.py --out /tmp/sweep-gpu            # on CUDA
    python bench/sweep_gpu.py --out /tmp/sweep-cpu --tiny     # the 2-layer shape on the CPU (smoke run)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from engineforge.measure.gates import evaluate_gates
from engineforge.recipe_file import parse_recipe
from engineforge.sweep.champion import choose
from engineforge.sweep.expand import expand
from engineforge.sweep.publish import write_outputs
from engineforge.sweep.table import VariantRecord, to_markdown
from gpu_validate import TINYLLAMA_SHAPE, model_section, validated  # bench/ is on the path as a script

TINY_SHAPE = "    num_hidden_layers: 2\n"


def sweep_recipe(device: str, shape: str, max_tokens: int) -> str:
    """Precision x continuous batching, each at concurrency 1 and 32; gate: TTFT p99 under 5 s."""
    return model_section("tinyllama-sweep-gpu", device, shape) + f"""\
validate:
  warmup_requests: 1
  max_tokens: {max_tokens}
  gates:
    max_ttft_ms_p99: 5000
sweep:
  matrix:
    model.dtype: [bfloat16, float32]
    serve.continuous_batching: [true, false]
  load:
    - concurrency: 1
      requests: 4
    - concurrency: 32
      requests: 32
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--store", type=Path, help="content-addressed store (default OUT/store)")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="the 2-layer shape (a CPU smoke run)")
    parser.add_argument("--from-log", type=Path, help="redo the table and plots from a run's printed JSON lines")
    args = parser.parse_args()
    recipe = parse_recipe(sweep_recipe(args.device, TINY_SHAPE if args.tiny else TINYLLAMA_SHAPE, args.max_tokens))
    started = time.perf_counter()
    records = _from_log(args.from_log) if args.from_log else _measure(recipe, args)
    champion = choose(records, recipe.sweep.objective)
    name = champion.name if champion else None
    write_outputs(records, name, recipe.sweep.objective, args.out)
    print(to_markdown(records, name, recipe.sweep.objective))
    print(f"sweep of {len(records)} variants in {time.perf_counter() - started:.0f} s")
    return 0


def _from_log(path: Path) -> list[VariantRecord]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
    return [VariantRecord(name=row.pop("variant"), gpus=1, gates=row.pop("gates"), figures=row) for row in rows]


def _measure(recipe, args) -> list[VariantRecord]:
    records = []
    for variant in expand(recipe):
        variant_started = time.perf_counter()
        result = validated(variant.recipe, args.store or args.out / "store")
        figures = {**result.outputs["figures"], "variant_s": time.perf_counter() - variant_started}
        gates = "passed" if evaluate_gates(variant.recipe.validate_.gates, figures).passed else "failed"
        records.append(VariantRecord(name=variant.name, gpus=variant.gpus, figures=figures, gates=gates))
        print(json.dumps({"variant": variant.name, "gates": gates, **figures}, default=str), flush=True)
    return records


if __name__ == "__main__":
    raise SystemExit(main())
