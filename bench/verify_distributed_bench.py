"""Single-process against distributed checkpoint verification (the forward pass), tp = 1, 2, 4.

Writes a synthetic Llama of the given shape (default TinyLlama-1.1B-shaped), shards it at each tp,
then, side by side in one run and for each tp:

- single: `emulate_logits` in this process over all rank files (loading them included), on the CPU
  for gloo or on cuda for nccl, i.e. what `verify-checkpoint` does for its logits;
- distributed: `run_ranks` (what `verify-checkpoint --distributed` does): one process per rank, real
  collectives; `launch_s` is start to join (process start, rendezvous, loading, forward, gather),
  `load_s` / `forward_s` are the gathering rank's own figures.

Both are compared with transformers' logits (computed once, on the CPU). Prints one JSON line per
configuration (tp whose backend cannot run here, e.g. nccl with fewer GPUs than ranks, prints a
`skipped` line). The first distributed run of the process also starts the forkserver; a warm-up at
tp 1 does that first and prints its own line.

    python bench/verify_distributed_bench.py --hidden 256 --inter 688 --layers 4 --heads 8 --kv-heads 4 --vocab 8000
    python bench/verify_distributed_bench.py --backend nccl --dtype bfloat16      # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--inter", type=int, default=5632)
    parser.add_argument("--layers", type=int, default=22)
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--tp", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--backend", default="gloo", choices=["gloo", "nccl"])
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", type=Path, default=None, help="Use this Hugging Face model directory instead of writing a synthetic one (the shape flags are then ignored).")
    parser.add_argument("--work", type=Path, default=None, help="Where to write the model and checkpoints (default: a temporary directory, removed).")
    return parser.parse_args()


def machine(backend: str) -> dict:
    import torch

    info = {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "torch": torch.__version__}
    if backend == "nccl" and torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def time_single(ckpt_dir: Path, reference, device: str):
    import torch

    from engineforge.verify.ckpt_reader import TrtllmCheckpoint
    from engineforge.verify.emulate import emulate_logits

    started = time.perf_counter()
    with torch.no_grad():
        logits = emulate_logits(TrtllmCheckpoint(ckpt_dir), reference.input_ids, reference.cos, reference.sin, device)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started, logits.cpu()


def time_distributed(ckpt_dir: Path, reference, backend: str, world: int):
    from engineforge.verify.distributed import run_ranks

    result = run_ranks(ckpt_dir, reference.input_ids, reference.cos, reference.sin, backend, world)
    if result["logits"] is None:
        raise SystemExit(f"distributed run failed at world size {world}: {[c.problem for c in result['checks'] if not c.ok]}")
    return result["timings"], result["logits"]


def bench_tp(tp: int, args, model_dir: Path, work: Path, reference, base: dict) -> dict:
    from engineforge.checkpoint import shard_checkpoint
    from engineforge.errors import UserError
    from engineforge.verify.distributed import resolve_backend
    from engineforge.verify.single import relative_error

    try:
        resolve_backend(args.backend, tp)
    except UserError as error:
        return {**base, "tp": tp, "skipped": str(error)}
    ckpt_dir = work / f"tp{tp}"
    shard_checkpoint(model_dir, ckpt_dir, tp=tp)
    device = "cuda" if args.backend == "nccl" else "cpu"
    singles, launches, loads, forwards = [], [], [], []
    for _ in range(args.repeats):  # alternate the two so load drifts hit both alike
        seconds, single_logits = time_single(ckpt_dir, reference, device)
        singles.append(seconds)
        timings, dist_logits = time_distributed(ckpt_dir, reference, args.backend, tp)
        launches.append(timings["launch_s"])
        loads.append(timings["load_s"])
        forwards.append(timings["forward_s"])
    median = statistics.median
    return {
        **base,
        "tp": tp,
        "single_s": round(median(singles), 4),
        "single_min_s": round(min(singles), 4),
        "distributed_launch_s": round(median(launches), 4),
        "distributed_launch_min_s": round(min(launches), 4),
        "distributed_load_s": round(median(loads), 4),
        "distributed_forward_s": round(median(forwards), 4),
        "ratio_launch_to_single": round(median(launches) / median(singles), 2),
        "rel_error_single": relative_error(single_logits, reference.expected),
        "rel_error_distributed": relative_error(dist_logits, reference.expected),
        "rel_error_distributed_vs_single": relative_error(dist_logits, single_logits),
    }


def main() -> int:
    args = parse_args()
    from engineforge.checkpoint import shard_checkpoint
    from engineforge.recipe.schema import SyntheticModel
    from engineforge.sources.synthetic import write_synthetic_model
    from engineforge.verify.ckpt_reader import TrtllmCheckpoint
    from engineforge.verify.single import reference_run

    spec = SyntheticModel(
        hidden_size=args.hidden,
        intermediate_size=args.inter,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        vocab_size=args.vocab,
        max_position_embeddings=max(512, args.tokens),
    )
    base = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "backend": args.backend,
        "dtype": args.dtype,
        "tokens": args.tokens,
        "repeats": args.repeats,
        "model": str(args.model) if args.model else "synthetic",
        "shape": None if args.model else spec.model_dump(include={"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vocab_size"}),
        "machine": machine(args.backend),
    }
    with tempfile.TemporaryDirectory(prefix="verify-dist-bench-", dir=args.work) as tmp:
        work = Path(tmp)
        model_dir = args.model or write_synthetic_model(spec, work / "model", dtype=args.dtype)
        shard_checkpoint(model_dir, work / "warmup", tp=1)
        reference = reference_run(TrtllmCheckpoint(work / "warmup"), model_dir, args.tokens, "cpu")
        warm_timings, _ = time_distributed(work / "warmup", reference, args.backend, 1)  # starts the forkserver
        print(json.dumps({**base, "warmup": True, "tp": 1, "distributed_launch_s": round(warm_timings["launch_s"], 4)}), flush=True)
        for tp in args.tp:
            print(json.dumps(bench_tp(tp, args, model_dir, work, reference, base)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
