"""Quantization cost: ModelOpt calibration time per sample and peak memory against the model's size.

Each (shape, format) runs in its own child process, so the peak memory it reports (CUDA: the
allocator's peak; CPU: the child's peak RSS) is that quantization's alone. The model is a synthetic
Llama (random weights), so the accuracy figures show the quantization noise of random logits, not a
trained model's loss. Results go to stdout as a table and, with --json, as one object per run.

    .venv/bin/python bench/quantize_bench.py --device cpu --shapes tiny,small --formats fp8,int4_awq
    python3 bench/quantize_bench.py --device cuda --shapes tinyllama --formats fp8,int4_awq,nvfp4 --dtype bfloat16
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHAPES = {  # SyntheticModel fields; widths are whole INT4 blocks of 128
    "tiny": dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=512),
    "small": dict(hidden_size=512, intermediate_size=1536, num_hidden_layers=4, num_attention_heads=8,
                  num_key_value_heads=4, vocab_size=4096),
    # TinyLlama-1.1B's config: 22 layers, hidden 2048, MLP 5632, 32 heads / 4 KV heads, vocab 32000.
    "tinyllama": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
                      num_key_value_heads=4, vocab_size=32000, max_position_embeddings=2048),
}


def one(model_dir: Path, format: str, kv_cache: str, device: str, dtype: str, samples: int, seq_len: int,
        eval_samples: int) -> dict:
    """One quantization in this process (the child's side)."""
    import torch

    from engineforge.quantize.ptq import quantize_model
    from engineforge.recipe.schema import QuantizeSpec

    spec = QuantizeSpec(format=format, kv_cache=kv_cache, calibration={
        "samples": samples, "eval_samples": eval_samples, "seq_len": seq_len, "batch_size": 4})
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        report = quantize_model(model_dir, spec, Path(out), device=device, dtype=dtype)
        export_bytes = sum(p.stat().st_size for p in report.export_dir.glob("*.safetensors"))
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"format": format, "kv_cache": kv_cache, "device": device,
            "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
            "wall_s": time.perf_counter() - started, "calibration_s": report.calibration_s,
            "calibration_s_per_sample": report.calibration_s / samples, "samples": samples, "seq_len": seq_len,
            "peak_bytes": peak, "export_bytes": export_bytes, **report.figures.model_dump()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--shapes", default="tiny,small")
    parser.add_argument("--formats", default="fp8,int4_awq", help="comma-separated; fp8+kv means fp8 with FP8 KV cache")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--eval-samples", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--one", nargs=3, metavar=("MODEL_DIR", "FORMAT", "KV_CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(Path(args.one[0]), args.one[1], args.one[2], args.device, args.dtype, args.samples,
                             args.seq_len, args.eval_samples)))
        return 0

    from engineforge.recipe.schema import SyntheticModel
    from engineforge.sources.synthetic import write_synthetic_model

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for shape in args.shapes.split(","):
            model_dir = write_synthetic_model(SyntheticModel(**SHAPES[shape]), Path(scratch) / shape, args.dtype)
            model_bytes = sum(p.stat().st_size for p in model_dir.glob("*.safetensors"))
            for entry in args.formats.split(","):
                format, _, kv = entry.partition("+")
                child = subprocess.run(
                    [sys.executable, __file__, "--device", args.device, "--dtype", args.dtype, "--samples",
                     str(args.samples), "--eval-samples", str(args.eval_samples), "--seq-len", str(args.seq_len),
                     "--one", str(model_dir), format, "fp8" if kv == "kv" else "none"],
                    capture_output=True, text=True)
                if child.returncode:
                    print(f"{shape} {entry}: failed: {child.stderr.strip().splitlines()[-1]}", flush=True)
                    continue
                row = {"shape": shape, "model_bytes": model_bytes, **json.loads(child.stdout.strip().splitlines()[-1])}
                rows.append(row)
                print(json.dumps(row) if args.json else
                      f"{shape:9s} {entry:11s} {args.device} model {model_bytes / 2**20:8.1f} MiB  calib "
                      f"{row['calibration_s']:7.2f} s ({row['calibration_s_per_sample'] * 1000:7.1f} ms/sample)  "
                      f"peak {row['peak_bytes'] / 2**20:8.0f} MiB ({row['peak_bytes'] / model_bytes:5.2f}x model)  "
                      f"export {row['export_bytes'] / 2**20:7.1f} MiB  ppl {row['source_perplexity']:.1f}->"
                      f"{row['quantized_perplexity']:.1f}  top-1 {row['token_agreement']:.3f}  "
                      f"max rel logit err {row['max_relative_logit_error']:.3f}  wall {row['wall_s']:.1f} s", flush=True)
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
