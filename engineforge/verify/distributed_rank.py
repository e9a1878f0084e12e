"""One rank of a distributed forward pass over a TensorRT-LLM checkpoint (torch.distributed).

Each process loads only its own `rank{r}.safetensors` and calls the per-rank functions of
`emulate.py` (`embed_rank`, `attention_step`, `ffn_step`, `lm_head_shard`) on it; the collectives
that `emulate.py` imitates are real here: the row-parallel partials of attention and MLP are
all-reduced over the stage's tensor-parallel group, hidden states go from tp-rank t of one pipeline
stage to tp-rank t of the next with send/recv, and the lm_head shards are gathered on the last
stage's tp-rank 0, which saves the logits for the launcher (`verify_distributed.py`).

`run_rank` is the `torch.multiprocessing.spawn` target. Before the forward pass every rank checks
its own file (readable, exactly the tensor names its coordinates require) and the ranks agree with
an all-reduce, so a broken file stops all of them cleanly instead of leaving peers waiting.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

# NVLink multicast off (NCCL NVLS and torch symmetric memory): the device rules require it.
NO_MULTICAST = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1"}
REPORTED_ENV = (*NO_MULTICAST, "CUDA_VISIBLE_DEVICES")
LOGITS_FILE = "logits.pt"


@dataclass(frozen=True)
class RankJob:
    """Everything a spawned rank needs (pickled to it): tensors on the CPU."""

    ckpt_dir: Path
    backend: str  # gloo (CPU tensors) or nccl (one GPU per rank)
    init_method: str  # file:// rendezvous shared by the ranks
    result_dir: Path
    input_ids: Any
    cos: Any
    sin: Any
    env: dict[str, str]  # the launcher's environment at launch, NO_MULTICAST applied
    timeout_s: float = 300.0


def run_rank(rank: int, job: RankJob) -> None:
    """Process target: one global rank. A failure leaves `error-rank{r}.json` (when, one line) and re-raises."""
    # Forked from a long-lived forkserver, this process inherited the environment of the moment the
    # server started; take the launcher's current one (CUDA_VISIBLE_DEVICES of the GPU slot held,
    # NVLink multicast off) before CUDA, NCCL or torch.distributed read it.
    os.environ.clear()
    os.environ.update(job.env)
    try:
        _run(rank, job)
    except BaseException as error:
        message = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        line = {"at_ns": time.monotonic_ns(), "error": f"{type(error).__name__}: {message}"}  # system-wide clock
        (job.result_dir / f"error-rank{rank}.json").write_text(json.dumps(line))
        raise


def _run(rank: int, job: RankJob) -> None:
    import torch
    import torch.distributed as dist

    from engineforge.verify.ckpt_reader import TrtllmCheckpoint

    ckpt = TrtllmCheckpoint(job.ckpt_dir)
    layout = ckpt.layout
    if job.backend == "nccl":
        device = torch.device("cuda", rank)  # one GPU per rank among those visible
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // layout.world_size))
    dist.init_process_group(
        job.backend,
        init_method=job.init_method,
        rank=rank,
        world_size=layout.world_size,
        timeout=timedelta(seconds=job.timeout_s),
        device_id=device if job.backend == "nccl" else None,
    )
    try:
        groups = [dist.new_group(layout.stage_ranks(stage)) for stage in range(layout.pp)]  # every rank creates every group
        started = time.perf_counter()
        rank_model, check = _load_rank(ckpt, rank, str(device))
        loaded = time.perf_counter()
        (job.result_dir / f"check-rank{rank}.json").write_text(check.model_dump_json())
        failed = torch.tensor([0 if check.ok else 1], device=device)
        dist.all_reduce(failed)
        if failed.item():
            return
        dist.barrier()
        begin = time.perf_counter()
        with torch.no_grad():
            logits = rank_forward(rank_model, ckpt, rank, groups[ckpt.coords(rank).pp_rank], job, device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        dist.barrier()
        if logits is not None:
            timings = {"load_s": loaded - started, "forward_s": time.perf_counter() - begin}
            env = {name: os.environ.get(name) for name in REPORTED_ENV}
            torch.save({"logits": logits.cpu(), "timings": timings, "env": env}, job.result_dir / LOGITS_FILE)
    finally:
        dist.destroy_process_group()


def _load_rank(ckpt, rank: int, device: str):
    """This rank's weights only, on its device, and the check of its file."""
    from engineforge.verify.emulate import RankModel
    from engineforge.verify.single import Check, names_check

    try:
        check = names_check(ckpt, rank)  # loads rank{rank}.safetensors, nothing else
    except Exception as error:  # unreadable file: reported by this rank, agreed on by all
        return None, Check(name=ckpt.rank_path(rank).name, ok=False, problem=f"cannot load: {error}")
    if not check.ok:
        return None, check
    weights = {name: tensor.to(device) for name, tensor in ckpt.weights(rank).items()}
    return RankModel(weights, ckpt.config, ckpt.layout.tp, ckpt.coords(rank).moe_ep_rank, device), check


def rank_forward(rank_model, ckpt, rank: int, group, job: RankJob, device):
    """This rank's pipeline stage: receive (or embed), its layers with all-reduced partials, then
    send on, or gather the lm_head shards. Returns the logits on the gathering rank, else None."""
    import torch
    import torch.distributed as dist

    from engineforge.verify.emulate import (
        attention_step,
        embed_rank,
        ffn_step,
        lm_head_shard,
    )

    layout, coords = ckpt.layout, ckpt.coords(rank)
    input_ids, cos, sin = job.input_ids.to(device), job.cos.to(device), job.sin.to(device)
    if coords.pp_rank == 0:
        hidden = embed_rank(rank_model, input_ids)
    else:
        hidden = torch.empty(*input_ids.shape, int(ckpt.config["hidden_size"]), device=device)
        dist.recv(hidden, src=rank - layout.tp)  # tp-rank t of the previous stage
    for local in range(len(ckpt.stage_layers(coords.pp_rank))):
        prefix = f"transformer.layers.{local}."
        hidden = hidden + _all_reduce(attention_step(rank_model, prefix, hidden, cos, sin), group)
        hidden = hidden + _all_reduce(ffn_step(rank_model, prefix, hidden), group)
    if coords.pp_rank < layout.pp - 1:
        dist.send(hidden.contiguous(), dst=rank + layout.tp)
        return None
    shard = lm_head_shard(rank_model, hidden).contiguous()
    shards = [torch.empty_like(shard) for _ in range(layout.tp)] if coords.tp_rank == 0 else None
    dist.gather(shard, shards, group=group, group_dst=0)
    if shards is None:
        return None
    return torch.cat(shards, dim=-1)[..., : int(ckpt.config["vocab_size"])]  # drop the vocab padding


def _all_reduce(partial, group):
    import torch.distributed as dist

    partial = partial.contiguous()
    dist.all_reduce(partial, group=group)
    return partial


def read_rank_checks(result_dir: Path, world_size: int) -> list:
    """The checks the ranks wrote (a rank that died before writing has none)."""
    from engineforge.verify.single import Check

    paths = [result_dir / f"check-rank{rank}.json" for rank in range(world_size)]
    return [Check(**json.loads(path.read_text())) for path in paths if path.is_file()]


def first_failure(result_dir: Path, world_size: int) -> tuple[int, str] | None:
    """(rank, error line) of the rank that failed first: its peers fail after it, when it goes away."""
    paths = [result_dir / f"error-rank{rank}.json" for rank in range(world_size)]
    failures = [(json.loads(path.read_text()), rank) for rank, path in enumerate(paths) if path.is_file()]
    if not failures:
        return None
    line, rank = min(failures, key=lambda failure: failure[0]["at_ns"])
    return rank, line["error"]
