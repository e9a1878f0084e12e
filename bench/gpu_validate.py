"""The validate stage on a GPU: `transformers serve` on CUDA, TinyLlama-1.1B-shaped synthetic model, bf16.

Runs the real stage functions (download -> build -> validate) against a private store, without
Prefect or MLflow (the device machine has neither), once per concurrency level, and prints one
JSON object per level with every figure the stage recorded (throughput, TTFT, TPOT, GPU
utilisation, decode roofline fraction when available).

    python bench/gpu_validate.py --out /tmp/gpu-validate --concurrency 1 32
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from engineforge.recipe.file import parse_recipe
from engineforge.runtimes import get_runtime
from engineforge.stages.build import build, build_key
from engineforge.stages.context import RunContext
from engineforge.tracking.mlflow_runs import TrackedRun
from engineforge.stages.download import download
from engineforge.stages.quantize import quantize, quantize_key
from engineforge.stages.validate import validate, validate_key

TINYLLAMA_SHAPE = """\
    hidden_size: 2048
    intermediate_size: 5632
    num_hidden_layers: 22
    num_attention_heads: 32
    num_key_value_heads: 4
    vocab_size: 32000
    max_position_embeddings: 2048
"""


def model_section(name: str, device: str, shape: str) -> str:
    """The recipe's name, model, runtime and serve device: what both GPU benches share."""
    return f"""\
name: {name}
model:
  source: synthetic:tinyllama-1.1b
  dtype: bfloat16
  synthetic:
{shape}runtime: transformers
serve:
  device: {device}
"""


def recipe_text(concurrency: int, requests: int, max_tokens: int, device: str, shape: str,
                quantize_format: str | None = None) -> str:
    """`quantize_format` adds ModelOpt's calibration in that format (served fake-quantized by this runtime)."""
    quantized = f"""\
quantize:
  format: {quantize_format}
  calibration: {{samples: 8, eval_samples: 4, seq_len: 64, batch_size: 4}}
""" if quantize_format else ""
    name = f"tinyllama-gpu-{quantize_format}" if quantize_format else "tinyllama-gpu"
    return model_section(name, device, shape) + f"""\
  continuous_batching: true
{quantized}validate:
  requests: {requests}
  concurrency: {concurrency}
  warmup_requests: {min(concurrency, 4)}
  max_tokens: {max_tokens}
"""


def stage_results(recipe, store: Path, remeasure: bool = False) -> dict:
    """download -> [quantize ->] build -> validate with the real stage functions on a private store: each
    stage's result by name. `remeasure` measures again even when the store holds this key's figures."""
    runtime = get_runtime(recipe.runtime)
    ctx = RunContext(runtime=runtime, store_root=str(store), mlflow_run=TrackedRun("", ""),
                     refresh=["validate"] if remeasure else [])
    results = {"download": download(recipe, ctx)}
    source = results["download"]
    if recipe.quantize:  # this runtime has no shard stage: build reads the quantized checkpoint
        source = results["quantize"] = quantize(recipe, source, ctx, quantize_key(recipe, source, ctx))
    built = results["build"] = build(recipe, source, ctx, build_key(recipe, source, runtime))
    results["validate"] = validate(recipe, built, ctx, validate_key(recipe, built))
    return results


def validated(recipe, store: Path, remeasure: bool = False):
    """The validate stage's result of `stage_results`."""
    return stage_results(recipe, store, remeasure)["validate"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--requests-per-slot", type=int, default=4, help="requests = max(8, this x concurrency)")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="the 2-layer test shape instead (a CPU smoke run)")
    args = parser.parse_args()
    results = []
    for concurrency in args.concurrency:
        requests = max(8, args.requests_per_slot * concurrency)
        shape = "    num_hidden_layers: 2\n" if args.tiny else TINYLLAMA_SHAPE
        recipe = parse_recipe(recipe_text(concurrency, requests, args.max_tokens, args.device, shape))
        started = time.perf_counter()
        figures = validated(recipe, args.out / "store", remeasure=True).outputs["figures"]
        row = {"concurrency": concurrency, "stage_s": round(time.perf_counter() - started, 1), **figures}
        results.append(row)
        print(json.dumps(row), flush=True)
    (args.out / "gpu_validate.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
