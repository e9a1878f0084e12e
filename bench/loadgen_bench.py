"""How fast is the load generator itself? Against a loopback server that answers instantly.

Measures, in one run on this machine:
1. Harness CPU per request and per streamed token (closed loop; process CPU time of the
   harness, the server runs in another process).
2. The highest request rate it sustains open loop (Poisson arrivals): a rate counts as
   sustained when requests leave at >= 95 % of the schedule's rate, nothing fails and the
   send lag (schedule to wire) has p50 < 2 ms (asyncio timers round up to 1 ms). The p99 lag
   is printed, not judged: on a shared machine it measures the neighbours.
3. Timing accuracy side by side with two plain client loops (httpx, aiohttp) against a
   server with known delays (TTFT 50 ms, ITL 10 ms) at 32 concurrent streams.

    .venv/bin/python bench/loadgen_bench.py            # prints a table and a BENCHMARKS.md block
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import psutil

from engineforge.loadgen import BenchConfig, run_benchmark

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests/doubles
from tests.doubles.openai_server import mock_server  # noqa: E402

RATE_TARGETS = (250, 500, 1000, 1500, 2000, 3000, 4000, 6000)


def config(url: str, **overrides) -> BenchConfig:
    base = {"endpoint": url, "model": "m", "prompts": ["hello"], "max_tokens": 1, "warmup_requests": 8,
            "gpu_telemetry": False}
    return BenchConfig(**(base | overrides))


def overhead(url: str, requests: int) -> list[dict]:
    rows = []
    for concurrency in (1, 32):
        for tokens in (1, 64):
            cfg = config(url, requests=requests, concurrency=concurrency, max_tokens=tokens, warmup_requests=concurrency)
            cpu, server = time.process_time(), server_cpu()
            result = run_benchmark(cfg)
            cpu, server = time.process_time() - cpu, server_cpu() - server
            s = result.summary
            rows.append({"concurrency": concurrency, "tokens": tokens, "req_s": s["request_throughput"],
                         "cpu_us_per_request": cpu / requests * 1e6, "server_us_per_request": server / requests * 1e6,
                         "errors": s["errors"]})
    return rows


def sustained(url: str, seconds: float) -> list[dict]:
    rows = []
    for target in RATE_TARGETS:
        requests = int(min(12000, max(500, target * seconds)))
        cpu, server = time.process_time(), server_cpu()
        result = run_benchmark(config(url, requests=requests, concurrency=512, request_rate=float(target)))
        cpu, server = time.process_time() - cpu, server_cpu() - server
        s = result.summary
        scheduled = [r.scheduled_s for r in result.records]
        started = [r.start_s for r in result.records]
        schedule_rate = (requests - 1) / (scheduled[-1] - scheduled[0])  # the Poisson draw's own rate
        achieved = (requests - 1) / (max(started) - min(started))
        ok = achieved >= 0.95 * schedule_rate and s["errors"] == 0 and s["send_lag_ms_p50"] < 2
        rows.append({"target": target, "schedule": schedule_rate, "achieved": achieved,
                     "lag_p50_ms": s["send_lag_ms_p50"], "lag_p99_ms": s["send_lag_ms_p99"],
                     "cpu_us_per_request": cpu / requests * 1e6, "server_us_per_request": server / requests * 1e6,
                     "sustained": ok})
        if len(rows) >= 2 and not rows[-1]["sustained"] and not rows[-2]["sustained"]:
            break  # two misses in a row: past the limit, not a neighbour's burst
    return rows


async def _httpx_loop(url: str, concurrency: int, rounds: int) -> tuple[list[float], list[float]]:
    import httpx

    ttft, itl = [], []
    body = {"model": "m", "prompt": "x", "max_tokens": 20, "stream": True}
    limits = httpx.Limits(max_connections=1)
    clients = [httpx.AsyncClient(limits=limits) for _ in range(concurrency)]

    async def worker(client):
        for round_ in range(rounds):
            start, times = time.perf_counter(), []
            async with client.stream("POST", url + "/v1/completions", json=body) as response:
                async for data in response.aiter_raw():
                    times += [time.perf_counter() - start] * data.count(b'"text": " t')
            if round_:
                ttft.append(times[0])
                itl.extend(b - a for a, b in zip(times, times[1:]))

    await asyncio.gather(*(worker(c) for c in clients))
    await asyncio.gather(*(c.aclose() for c in clients))
    return ttft, itl


async def _aiohttp_loop(url: str, concurrency: int, rounds: int) -> tuple[list[float], list[float]]:
    import aiohttp

    ttft, itl = [], []
    body = {"model": "m", "prompt": "x", "max_tokens": 20, "stream": True}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def worker():
            for round_ in range(rounds):
                start, times = time.perf_counter(), []
                async with session.post(url + "/v1/completions", json=body) as response:
                    async for data in response.content.iter_any():
                        times += [time.perf_counter() - start] * data.count(b'"text": " t')
                if round_:
                    ttft.append(times[0])
                    itl.extend(b - a for a, b in zip(times, times[1:]))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ttft, itl


def accuracy(url: str, concurrency: int = 32, rounds: int = 4, repeats: int = 3) -> list[dict]:
    """Each client `repeats` times, interleaved (neighbours' load hits all alike); medians of the runs."""
    runs: dict[str, list[tuple[float, float, float]]] = {}
    for _ in range(repeats):
        result = run_benchmark(config(url, requests=concurrency * (rounds - 1), concurrency=concurrency,
                                      warmup_requests=concurrency, max_tokens=20))
        s = result.summary
        runs.setdefault("engineforge.loadgen", []).append((s["ttft_ms_p50"], s["ttft_ms_mean"], s["itl_ms_p50"]))
        for name, loop in (("httpx (one client per slot)", _httpx_loop), ("aiohttp", _aiohttp_loop)):
            ttft, itl = asyncio.run(loop(url, concurrency, rounds))
            runs.setdefault(name, []).append(
                (statistics.median(ttft) * 1e3, statistics.mean(ttft) * 1e3, statistics.median(itl) * 1e3))
    return [{"client": name, "ttft_p50_ms": statistics.median(v[0] for v in values),
             "ttft_mean_ms": statistics.median(v[1] for v in values),
             "itl_p50_ms": statistics.median(v[2] for v in values)} for name, values in runs.items()]


def server_cpu() -> float:
    """CPU seconds of the mock server (this process's child)."""
    return sum(sum(child.cpu_times()[:2]) for child in psutil.Process().children())


def machine() -> str:
    load = os.getloadavg()
    return (f"{platform.node()}, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
            f"Python {platform.python_version()}, load average {load[0]:.2f} at start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="Requests per overhead run.")
    parser.add_argument("--seconds", type=float, default=3.0, help="Length of each request-rate step.")
    args = parser.parse_args()
    print(f"# Load generator ({date.today()}, {machine()})\n")
    load_at_start = os.getloadavg()[0]
    with mock_server(0.0, 0.0) as url:
        print("| concurrency | tokens/request | requests/s | harness CPU µs/request | server CPU µs/request |")
        print("|---|---|---|---|---|")
        rows = overhead(url, args.requests)
        for r in rows:
            print(f"| {r['concurrency']} | {r['tokens']} | {r['req_s']:.0f} | {r['cpu_us_per_request']:.0f} | "
                  f"{r['server_us_per_request']:.0f} |")
        per_token = {c: (next(r for r in rows if r["concurrency"] == c and r["tokens"] == 64)["cpu_us_per_request"]
                         - next(r for r in rows if r["concurrency"] == c and r["tokens"] == 1)["cpu_us_per_request"]) / 63
                     for c in (1, 32)}
        print(f"\nharness CPU per streamed token: {per_token[1]:.1f} µs (c=1), {per_token[32]:.1f} µs (c=32)\n")
        print("| target req/s | schedule req/s | sent req/s | send lag p50 ms | send lag p99 ms | harness CPU µs/req | server CPU µs/req | sustained |")
        print("|---|---|---|---|---|---|---|---|")
        steps = sustained(url, args.seconds)
        for r in steps:
            print(f"| {r['target']} | {r['schedule']:.0f} | {r['achieved']:.0f} | {r['lag_p50_ms']:.2f} | {r['lag_p99_ms']:.2f} | "
                  f"{r['cpu_us_per_request']:.0f} | {r['server_us_per_request']:.0f} | {'yes' if r['sustained'] else 'no'} |")
        best = max((r["target"] for r in steps if r["sustained"]), default=0)  # a miss below it was a neighbour
        print(f"\nhighest sustained request rate: {best} req/s (1 output token per request)\n")
    with mock_server(50.0, 10.0) as url:
        print("| client (32 streams, TTFT 50 ms, ITL 10 ms; median of 3 interleaved runs) | TTFT p50 ms | TTFT mean ms | ITL p50 ms |")
        print("|---|---|---|---|")
        for r in accuracy(url):
            print(f"| {r['client']} | {r['ttft_p50_ms']:.2f} | {r['ttft_mean_ms']:.2f} | {r['itl_p50_ms']:.2f} |")
    print(f"\nload average: {load_at_start:.2f} at start, {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
