"""GPU scheduling: one Prefect global concurrency slot per GPU, held by a stage while it uses GPUs.

Every GPU host has one global concurrency limit (default `gpu-<short hostname>`, or
`$ENGINEFORGE_GPU_LIMIT`) whose size is the number of GPUs it offers; `engineforge worker`
declares it. A stage that uses GPUs takes as many slots as it uses GPUs, with `strict=True`
(a missing limit is an error, never an unthrottled run), before its task run starts and
until it ends, so a host with N GPUs runs at most N GPU stages' GPUs at once. CPU stages take
none. Within a host, which GPUs a stage gets is decided by per-device lock files, and the
stage sees them as `CUDA_VISIBLE_DEVICES` (its servers and builders inherit the variable).

Which stages use GPUs each stage says (`Stage.gpus`): build for the TensorRT-LLM runtimes, validate
when it serves on a GPU, each with tensor x pipeline GPUs; shard never (the streamed sharder runs on the CPU).
`ENGINEFORGE_GPU_STAGES=validate,build` makes the named stages take slots regardless, which
rehearses GPU scheduling on a CPU machine (the integration tests do this).
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from engineforge.errors import StageFailed
from engineforge.gpus import visible_devices
from engineforge.recipe.schema import Recipe
from engineforge.runtimes.base import Runtime
from engineforge.settings import settings, variable
from engineforge.stages.pipeline import STAGES
from engineforge.stages.stage import Stage

LIMIT_ENV = variable("GPU_LIMIT")


def limit_name() -> str:
    """This host's GPU limit: `$ENGINEFORGE_GPU_LIMIT`, or `gpu-` and the short hostname."""
    configured = settings().GPU_LIMIT.strip()
    if configured:
        return configured
    host = re.sub(r"[^a-z0-9-]+", "-", socket.gethostname().split(".")[0].lower()).strip("-")
    return f"gpu-{host or 'localhost'}"


def forced_stages() -> set[str]:
    return {name.strip() for name in settings().GPU_STAGES.split(",") if name.strip()}


def gpus_needed(stage: Stage, recipe: Recipe, runtime: Runtime) -> int:
    """How many GPUs `stage` uses for `recipe` on its (already resolved) runtime (0 for CPU stages):
    the stage says (`Stage.gpus`), unless `$ENGINEFORGE_GPU_STAGES` names it."""
    if stage.name in forced_stages():
        return recipe.parallel.gpus
    return stage.gpus(recipe, runtime)


@contextmanager
def holding_gpus(stage: str, count: int) -> Iterator[list[int]]:
    """Hold `count` slots of this host's GPU limit (and as many local devices) while the block runs."""
    if count <= 0:
        yield []
        return
    from prefect.concurrency.sync import concurrency

    name = limit_name()
    size = _limit_size(stage, name, count)
    # Lease renewals keep the slots while a long build runs; a transient API error must not kill it.
    with concurrency(name, occupy=count, strict=True, raise_on_lease_renewal_failure=False):
        with _claimed_devices(name, size, count) as devices, _visible_devices(devices):
            _log(f"{stage} holds {count} of {size} GPU slot(s) of {name}: CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']}")
            yield devices


def declare_limit(slots: int, name: str | None = None) -> str:
    """Create or resize this host's GPU limit to `slots` (what `engineforge worker` does first)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
    )
    from prefect.exceptions import ObjectNotFound

    name = name or limit_name()
    with get_client(sync_client=True) as client:
        try:
            current = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=slots))
        else:
            if current.limit != slots or not current.active:
                client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=slots, active=True))
    return name


def ensure_declared(recipe: Recipe) -> None:
    """For a local run (`engineforge run`): create this host's GPU limit, one slot per GPU torch sees,
    if the recipe has GPU stages and no worker declared it. An existing limit is never resized."""
    from engineforge.runtimes import get_runtime

    runtime = get_runtime(recipe.runtime)
    if not any(gpus_needed(stage, recipe, runtime) for stage in STAGES):
        return
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from engineforge.gpus import gpu_info

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(limit_name())
        except ObjectNotFound:
            declare_limit(int(gpu_info()["gpu_count"] or 0))


def _limit_size(stage: str, name: str, count: int) -> int:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            size = client.read_global_concurrency_limit_by_name(name).limit
        except ObjectNotFound:
            raise StageFailed(
                stage,
                f"no GPU concurrency limit {name!r} on the Prefect server; start this host's worker with "
                f"`engineforge worker` or create it: prefect gcl create {name} --limit <number of GPUs>",
                user_error=True,
            ) from None
    if count > size:
        raise StageFailed(
            stage,
            f"needs {count} GPU(s) but {name!r} has {size} slot(s); use a host with more GPUs, a smaller "
            f"parallel layout, or declare the GPUs: prefect gcl update {name} --limit <number of GPUs>",
            user_error=True,
        )
    return size


def _lock_dir(name: str) -> Path:
    root = Path(settings().GPU_LOCK_DIR or Path(tempfile.gettempdir()) / "engineforge-gpu-locks")
    directory = root / name
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@contextmanager
def _claimed_devices(name: str, size: int, count: int, poll_s: float = 0.5) -> Iterator[list[int]]:
    """Lock `count` free device indices below `size` on this host (lock files die with their process)."""
    directory = _lock_dir(name)
    while True:
        with ExitStack() as held:
            devices = []
            for index in range(size):
                lock = FileLock(directory / f"{index}.lock", thread_local=False)
                try:
                    lock.acquire(timeout=0)
                except Timeout:
                    continue
                held.callback(lock.release)
                devices.append(index)
                if len(devices) == count:
                    yield devices
                    return
        # More holders than devices on this host: the limit is shared with another host. Wait.
        time.sleep(poll_s)


@contextmanager
def _visible_devices(devices: list[int]) -> Iterator[None]:
    """Expose the claimed devices to the stage's subprocesses; an existing mask is indexed, not replaced."""
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    physical = visible_devices()
    chosen = [physical[index] if physical and index < len(physical) else str(index) for index in devices]
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(chosen)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = before


def _log(message: str) -> None:
    try:
        from prefect import get_run_logger

        get_run_logger().info(message)
    except Exception:  # outside a flow run there is no run logger
        pass
