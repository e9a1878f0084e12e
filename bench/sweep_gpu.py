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

from engineforge.measure.gates import GATE_FIGURES, evaluate_gates
from engineforge.measure.intervals import conservative
from engineforge.recipe.file import parse_recipe
from engineforge.sweep.champion import Verdict, decide
from engineforge.sweep.expand import expand
from engineforge.sweep.publish import write_outputs
from engineforge.sweep.table import VariantRecord
from gpu_validate import TINYLLAMA_SHAPE, model_section, validated  # bench/ is on the path as a script

TINY_SHAPE = "    num_hidden_layers: 2\n"


def sweep_recipe(device: str, shape: str, max_tokens: int) -> str:
    """Continuous batching on and off, each at concurrency 1 and 32, three repeats on one server per variant
    (blocked: this script measures the variants one after another, so interleaving would gain nothing);
    gate: TTFT p99 under 5 s."""
    return model_section("tinyllama-sweep-gpu", device, shape) + f"""\
validate:
  warmup_requests: 1
  max_tokens: {max_tokens}
  gates:
    max_ttft_ms_p99: 5000
sweep:
  repeats: 3
  order: blocked
  matrix:
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
    parser.add_argument("--from-log", type=Path, help="redo the table and plots from a run's variants.jsonl")
    args = parser.parse_args()
    recipe = parse_recipe(sweep_recipe(args.device, TINY_SHAPE if args.tiny else TINYLLAMA_SHAPE, args.max_tokens))
    started = time.perf_counter()
    records = _from_log(args.from_log) if args.from_log else measure(recipe, args.store or args.out / "store", args.out)
    verdict = publish(records, recipe, args.out)
    print(verdict.table(records))
    print(f"sweep of {len(records)} variants in {time.perf_counter() - started:.0f} s")
    return 0


def publish(records: list[VariantRecord], recipe, out: Path) -> Verdict:
    """The verdict, and the table and plots the sweep flow publishes, written under `out`."""
    verdict = decide(records, recipe.sweep.objective)
    write_outputs(records, verdict, out, recipe)
    return verdict


def _from_log(path: Path) -> list[VariantRecord]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{") and '"variant"' in line]
    return [VariantRecord(name=row.pop("variant"), gpus=1, gates=row.pop("gates"), repeats=row.pop("repeats", []),
                          figures=row) for row in rows]


def measure(recipe, store: Path, out: Path) -> list[VariantRecord]:
    """Each variant through the real stage functions, one after another; its row printed as it ends (and
    appended in full to `out`/variants.jsonl, so a run cut off keeps what it measured)."""
    out.mkdir(parents=True, exist_ok=True)
    directions = {figure: op for figure, op in GATE_FIGURES.values()}
    records = []
    for variant in expand(recipe):
        variant_started = time.perf_counter()
        outputs = validated(variant.recipe, store).outputs
        figures = {**outputs["figures"], "variant_s": time.perf_counter() - variant_started}
        repeats = outputs.get("repeat_figures", [])
        judged = conservative(figures, repeats, directions)  # as the validate task judges repeats
        gates = evaluate_gates(variant.recipe.validate_.gates, judged, outputs.get("missing")).verdict
        records.append(VariantRecord(name=variant.name, gpus=variant.gpus, figures=figures, gates=gates, repeats=repeats))
        row = {"variant": variant.name, "gates": gates, **figures, "repeats": repeats}
        with (out / "variants.jsonl").open("a") as log:
            log.write(json.dumps(row, default=str) + "\n")
        headline = ("output_tokens_per_s", "ttft_ms_p50", "tpot_ms_p50", "roofline_fraction", "variant_s")
        print(json.dumps({key: row[key] for key in ("variant", "gates", *headline) if key in row}), flush=True)
    return records


if __name__ == "__main__":
    raise SystemExit(main())
