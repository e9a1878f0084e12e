"""verify_distributed: the forward check of `verify_checkpoint`, one process per rank.

The launcher checks its input (checkpoint complete, config of this model, one process per rank,
the backend usable: NCCL needs one visible GPU per rank), computes transformers' reference logits
and RoPE tables on the CPU, then starts `world_size` processes with
`torch.multiprocessing.start_processes` (start method forkserver: the server imports torch once,
then forks each rank, instead of every rank importing torch anew; it never touches CUDA, so NCCL
ranks are safe). Rendezvous goes through a `file://` store in a private temporary directory, so no
port is needed. Each rank runs `distributed_rank.run_rank` with the launcher's environment of the
moment (so a GPU slot's `CUDA_VISIBLE_DEVICES` reaches it) and NVLink multicast off
(`NCCL_NVLS_ENABLE=0`, `TORCH_SYMM_MEM_DISABLE_MULTICAST=1`). If a rank raises, the others are
stopped and the failure becomes a failed check (exit 1), never a hang.

Weights are not rebuilt here (each process reads only its own rank file); run `verify-checkpoint`
without `--distributed` for the exact per-weight comparison.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import Field

from engineforge.checkpoint.supported import read_shardable_shape
from engineforge.errors import UserError
from engineforge.verify.ckpt_reader import TrtllmCheckpoint
from engineforge.verify.distributed_rank import (
    LOGITS_FILE,
    NO_MULTICAST,
    RankJob,
    first_failure,
    read_rank_checks,
    run_rank,
)
from engineforge.verify.single import (
    Check,
    VerifyReport,
    config_check,
    logits_check,
    reference_run,
)

BACKENDS = ("auto", "gloo", "nccl")


class DistributedReport(VerifyReport):
    backend: str
    world_size: int
    timings: dict[str, float] = Field(default_factory=dict)  # launch_s (spawn to join), load_s and forward_s of the gathering rank
    env: dict[str, str | None] = Field(default_factory=dict)  # multicast switches as the gathering rank saw them


def verify_distributed(
    ckpt_dir: Path, hf_dir: Path, rtol: float = 1e-5, tokens: int = 16, backend: str = "auto", nproc: int | None = None, timeout_s: float = 300.0
) -> DistributedReport:
    ckpt = TrtllmCheckpoint(ckpt_dir)
    world = ckpt.layout.world_size
    if nproc is not None and nproc != world:
        raise UserError(f"--nproc {nproc}: {ckpt_dir} has {world} ranks (tp {ckpt.layout.tp} x pp {ckpt.layout.pp}) and needs one process per rank; use --nproc {world}")
    backend = resolve_backend(backend, world)
    report = DistributedReport(
        ckpt_dir=ckpt_dir, hf_dir=hf_dir, rtol=rtol, tokens=tokens, device="cuda" if backend == "nccl" else "cpu", checks=[], backend=backend, world_size=world
    )
    report.checks.append(config_check(ckpt, read_shardable_shape(hf_dir)))
    if not report.checks[0].ok:
        return report
    reference = reference_run(ckpt, Path(hf_dir), tokens, "cpu")
    result = run_ranks(ckpt_dir, reference.input_ids, reference.cos, reference.sin, backend, world, timeout_s)
    report.checks += result["checks"]
    report.timings, report.env = result["timings"], result["env"]
    if result["logits"] is not None:
        report.logits = logits_check(result["logits"], reference.expected, rtol)
    return report


def resolve_backend(backend: str, world: int) -> str:
    """gloo or nccl; auto = nccl when this torch has it and sees a GPU per rank, else gloo."""
    import torch
    import torch.distributed as dist

    if backend not in BACKENDS:
        raise UserError(f"--backend {backend}: not one of {', '.join(BACKENDS)}")
    if not dist.is_available():
        raise UserError(f"this torch ({torch.__version__}) has no torch.distributed; install a build with it")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if backend == "auto":
        backend = "nccl" if dist.is_nccl_available() and gpus >= world else "gloo"
    if backend == "nccl" and not dist.is_nccl_available():
        raise UserError(f"--backend nccl: this torch ({torch.__version__}) has no NCCL; use --backend gloo or a CUDA build of torch")
    if backend == "nccl" and gpus < world:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
        raise UserError(
            f"--backend nccl: the checkpoint has {world} ranks and NCCL needs one GPU per rank, but {gpus} GPU(s) are visible "
            f"(CUDA_VISIBLE_DEVICES={visible}); run on a host with {world} GPUs or use --backend gloo"
        )
    if backend == "gloo" and not dist.is_gloo_available():
        raise UserError(f"--backend gloo: this torch ({torch.__version__}) has no gloo; use --backend nccl")
    return backend


def run_ranks(ckpt_dir: Path, input_ids, cos, sin, backend: str, world: int, timeout_s: float = 300.0) -> dict[str, Any]:
    """Spawn one process per rank; returns logits (None if they were not computed), the ranks'
    checks (plus one per failed rank), timings and the environment the ranks saw."""
    import torch
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="engineforge-dist-") as tmp:
        result_dir = Path(tmp)
        env = {**os.environ, **NO_MULTICAST}
        job = RankJob(Path(ckpt_dir), backend, f"file://{result_dir / 'rendezvous'}", result_dir, input_ids.cpu(), cos.cpu(), sin.cpu(), env, timeout_s)
        failed: list[Check] = []
        started = time.perf_counter()
        multiprocessing.set_forkserver_preload(["torch.distributed", "engineforge.verify.distributed_rank"])
        try:
            mp.start_processes(run_rank, args=(job,), nprocs=world, join=True, start_method="forkserver")
        except (mp.ProcessRaisedException, mp.ProcessExitedException) as error:
            failed = _rank_failures(result_dir, world, error)
        launch_s = time.perf_counter() - started
        checks = read_rank_checks(result_dir, world) + failed
        saved = torch.load(result_dir / LOGITS_FILE) if (result_dir / LOGITS_FILE).is_file() and not failed else None
    if saved is None:
        return {"logits": None, "checks": checks, "timings": {"launch_s": launch_s}, "env": {}}
    return {"logits": saved["logits"], "checks": checks, "timings": {"launch_s": launch_s, **saved["timings"]}, "env": saved["env"]}


def _rank_failures(result_dir: Path, world: int, error: Exception) -> list[Check]:
    """The failed check of the rank that failed first. Peers that fail because it went away
    (connection closed) or that were stopped are not reported."""
    first = first_failure(result_dir, world)
    if first is None:  # died without a word (killed, out of memory): how it exited
        rank, problem = getattr(error, "error_index", "?"), str(error).strip().splitlines()[0]
    else:
        rank, problem = first
    return [Check(name=f"rank {rank} process", ok=False, problem=f"{problem} (the other ranks were stopped)")]
