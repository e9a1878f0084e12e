#!/usr/bin/env bash
# Single-GPU check of `verify-checkpoint --distributed` over NCCL (world size 1), for the lent H100.
#
# On the device machine, in the repository root, with engineforge's dependencies importable by
# python3 (the image has torch, transformers, safetensors, typer, rich; pydantic and the rest travel
# as wheels in .whl, see /work/.library/device/README.md):
#
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
#     && export PYTHONPATH=/tmp/site || exit; bash bench/verify_distributed_gpu1.sh "$OUT"
#
# Writes into OUT_DIR (default /tmp/verify-dist-gpu1): machine.txt, nccl-tp1.json (distributed,
# NCCL, 1 process), single-tp1.json (single process on cuda, the baseline), nccl-tp2.txt (a
# 2-rank checkpoint on 1 GPU: must be refused with exit 2 and one line), bench.jsonl
# (bench/verify_distributed_bench.py --backend nccl; tp 2 and 4 print `skipped` on one GPU) and
# summary.txt with every exit code. NVLink multicast stays off in every process started here.
set -uo pipefail
PY=${PYTHON:-python3}
OUT=${1:-/tmp/verify-dist-gpu1}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/verify-dist-gpu1-XXXX)
trap 'rm -rf "$WORK"' EXIT
ef() { "$PY" -m engineforge.cli "$@"; }

{ nvidia-smi -L; "$PY" -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpus", torch.cuda.device_count(), "nccl", torch.cuda.nccl.version(), "transformers", transformers.__version__)'; } >"$OUT/machine.txt" 2>&1

# TinyLlama-1.1B-shaped synthetic model in bf16, sharded at tp 1 and tp 2.
"$PY" - "$WORK" <<'EOF' || { echo "model/shard failed" | tee "$OUT/summary.txt"; exit 1; }
import sys
from pathlib import Path
from engineforge.recipe import SyntheticModel
from engineforge.synthetic import write_synthetic_model
from engineforge.trtllm import shard_checkpoint
work = Path(sys.argv[1])
spec = SyntheticModel(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
                      num_key_value_heads=4, vocab_size=32000, max_position_embeddings=2048)
write_synthetic_model(spec, work / "model", dtype="bfloat16")
for tp in (1, 2):
    shard_checkpoint(work / "model", work / f"tp{tp}", tp=tp)
EOF

ef verify-checkpoint "$WORK/tp1" --against "$WORK/model" --distributed --backend nccl --nproc 1 --json >"$OUT/nccl-tp1.json" 2>"$OUT/nccl-tp1.err"
rc_nccl=$?
ef verify-checkpoint "$WORK/tp1" --against "$WORK/model" --device cuda --json >"$OUT/single-tp1.json" 2>"$OUT/single-tp1.err"
rc_single=$?
ef verify-checkpoint "$WORK/tp2" --against "$WORK/model" --distributed --backend nccl >"$OUT/nccl-tp2.txt" 2>&1
rc_refused=$?
"$PY" bench/verify_distributed_bench.py --model "$WORK/model" --backend nccl --dtype bfloat16 --tp 1 2 4 --repeats 3 --work "$WORK" >"$OUT/bench.jsonl" 2>"$OUT/bench.err"
rc_bench=$?

{
  echo "distributed nccl tp1: exit $rc_nccl (want 0)"
  echo "single-process cuda tp1: exit $rc_single (want 0)"
  echo "nccl tp2 on one GPU: exit $rc_refused (want 2): $(grep -m1 error: "$OUT/nccl-tp2.txt")"
  echo "bench: exit $rc_bench (want 0)"
  "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print("nccl logits", r["logits"], "timings", r["timings"], "env", r["env"])' "$OUT/nccl-tp1.json"
  "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print("single logits", r["logits"])' "$OUT/single-tp1.json"
} 2>&1 | tee "$OUT/summary.txt"
[ "$rc_nccl" = 0 ] && [ "$rc_single" = 0 ] && [ "$rc_refused" = 2 ] && [ "$rc_bench" = 0 ]
