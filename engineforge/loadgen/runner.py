"""Run a benchmark: warm up, then drive the load pattern and collect one record per request.

Closed loop (no request_rate): `concurrency` workers each send their next request as soon as
the previous one ends. Open loop (request_rate): requests leave at gamma-process arrival times,
at most `concurrency` in flight; `scheduled_s` against `start_s` shows any lag of the harness.
A probe (measure's GPU telemetry) runs around the measured requests only, after the warm-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from engineforge.loadgen.client import send_request
from engineforge.loadgen.config import BenchConfig
from engineforge.loadgen.connections import ConnectionSlots
from engineforge.loadgen.metrics import missing_figures, summarize
from engineforge.loadgen.records import BenchResult, RequestRecord
from engineforge.loadgen.schedule import arrival_times

OnRecord = Callable[[RequestRecord], None]
T = TypeVar("T")


class Probe(AbstractContextManager, Protocol):
    """Sampled while the measured requests run; its figures join the summary."""

    names: list[str]  # the devices it sampled (BenchResult.gpus)

    def figures(self) -> dict[str, float]: ...


ProbeFactory = Callable[[], Probe]


def run_benchmark(config: BenchConfig, on_record: OnRecord | None = None, probe: ProbeFactory | None = None) -> BenchResult:
    """Run `config` to the end and return its figures and records (blocking).

    Works from any thread; inside a running event loop it runs on a helper thread.
    `on_record` is called with each measured record as it completes (progress display);
    `probe()` makes a new probe for this run.
    """
    return run_sync(benchmark(config, on_record, probe))


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="engineforge-loadgen") as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def benchmark(config: BenchConfig, on_record: OnRecord | None = None, probe: ProbeFactory | None = None) -> BenchResult:
    async with ConnectionSlots(config.concurrency) as slots:
        if config.warmup_requests:
            await closed_loop(slots, config, config.warmup_requests, time.perf_counter())
        started_at = datetime.now(UTC).isoformat()
        with probe() if probe else contextlib.nullcontext() as sampled:
            clock_zero = time.perf_counter()
            if config.request_rate is None:
                records = await closed_loop(slots, config, config.requests, clock_zero, on_record)
            else:
                records = await open_loop(slots, config, clock_zero, on_record)
    load = summarize(records)
    return BenchResult(config=config, summary=load | (sampled.figures() if sampled else {}), records=records,
                       started_at=started_at, gpus=sampled.names if sampled else [], missing=missing_figures(records, load))


async def _send(
    slots: ConnectionSlots, config: BenchConfig, index: int, clock_zero: float, scheduled: float, on_record: OnRecord | None
) -> RequestRecord:
    async with slots.slot() as slot:
        record = await send_request(slot, config, index, index, clock_zero, scheduled)
    if on_record:
        on_record(record)
    return record


async def closed_loop(
    slots: ConnectionSlots, config: BenchConfig, count: int, clock_zero: float, on_record: OnRecord | None = None
) -> list[RequestRecord]:
    records: list[RequestRecord] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            index, next_index = next_index, next_index + 1
            scheduled = time.perf_counter() - clock_zero
            records.append(await _send(slots, config, index, clock_zero, scheduled, on_record))

    await asyncio.gather(*(worker() for _ in range(min(config.concurrency, count))))
    return sorted(records, key=lambda record: record.index)


async def open_loop(
    slots: ConnectionSlots, config: BenchConfig, clock_zero: float, on_record: OnRecord | None = None
) -> list[RequestRecord]:
    tasks = []
    for index, scheduled in enumerate(arrival_times(config.requests, config.request_rate, config.burstiness, config.seed)):
        delay = clock_zero + scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_send(slots, config, index, clock_zero, float(scheduled), on_record)))
    return list(await asyncio.gather(*tasks))
