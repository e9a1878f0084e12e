"""How fast is the load generator itself? Against a loopback server that answers instantly.

Measures, in one run on this machine:
1. Harness CPU per request and per streamed token (closed loop; process CPU time of the
   harness, the server runs in another process).
2. The highest request rate it sustains open loop: a rate counts as sustained when the
   achieved rate is >= 95 % of the target, nothing failed and the send lag (schedule to wire)
   stays p50 < 1 ms and p99 < 10 ms.
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
import time
from datetime import date

from engineforge.loadgen import BenchConfig, run_benchmark
from engineforge.loadgen.mock_server import mock_server

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
            cpu = time.process_time()
            result = run_benchmark(cfg)
            cpu = time.process_time() - cpu
            s = result.summary
            rows.append({"concurrency": concurrency, "tokens": tokens, "req_s": s["request_throughput"],
                         "cpu_us_per_request": cpu / requests * 1e6, "errors": s["errors"]})
    return rows


def sustained(url: str, seconds: float) -> list[dict]:
    rows = []
    for target in RATE_TARGETS:
        requests = int(min(8000, max(500, target * seconds)))
        cpu = time.process_time()
        result = run_benchmark(config(url, requests=requests, concurrency=512, request_rate=float(target)))
        cpu = time.process_time() - cpu
        s = result.summary
        achieved = s["completed"] / max(r.start_s for r in result.records)  # sends/s over the schedule
        ok = (achieved >= 0.95 * target and s["errors"] == 0 and s["send_lag_ms_p50"] < 1 and s["send_lag_ms_p99"] < 10)
        rows.append({"target": target, "achieved": achieved, "lag_p50_ms": s["send_lag_ms_p50"],
                     "lag_p99_ms": s["send_lag_ms_p99"], "cpu_us_per_request": cpu / requests * 1e6,
                     "sustained": ok})
        if not ok:
            break
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


def accuracy(url: str, concurrency: int = 32, rounds: int = 4) -> list[dict]:
    rows = []
    result = run_benchmark(config(url, requests=concurrency * (rounds - 1), concurrency=concurrency,
                                  warmup_requests=concurrency, max_tokens=20))
    rows.append({"client": "engineforge.loadgen", "ttft_p50_ms": result.summary["ttft_ms_p50"],
                 "itl_p50_ms": result.summary["itl_ms_p50"], "ttft_mean_ms": result.summary["ttft_ms_mean"]})
    for name, loop in (("httpx (one client per slot)", _httpx_loop), ("aiohttp", _aiohttp_loop)):
        ttft, itl = asyncio.run(loop(url, concurrency, rounds))
        rows.append({"client": name, "ttft_p50_ms": statistics.median(ttft) * 1e3,
                     "itl_p50_ms": statistics.median(itl) * 1e3, "ttft_mean_ms": statistics.mean(ttft) * 1e3})
    return rows


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
    with mock_server(0.0, 0.0) as url:
        print("| concurrency | tokens/request | requests/s | harness CPU µs/request |")
        print("|---|---|---|---|")
        rows = overhead(url, args.requests)
        for r in rows:
            print(f"| {r['concurrency']} | {r['tokens']} | {r['req_s']:.0f} | {r['cpu_us_per_request']:.0f} |")
        per_token = {c: (next(r for r in rows if r["concurrency"] == c and r["tokens"] == 64)["cpu_us_per_request"]
                         - next(r for r in rows if r["concurrency"] == c and r["tokens"] == 1)["cpu_us_per_request"]) / 63
                     for c in (1, 32)}
        print(f"\nharness CPU per streamed token: {per_token[1]:.1f} µs (c=1), {per_token[32]:.1f} µs (c=32)\n")
        print("| target req/s | achieved | send lag p50 ms | send lag p99 ms | CPU µs/request | sustained |")
        print("|---|---|---|---|---|---|")
        steps = sustained(url, args.seconds)
        for r in steps:
            print(f"| {r['target']} | {r['achieved']:.0f} | {r['lag_p50_ms']:.2f} | {r['lag_p99_ms']:.2f} | "
                  f"{r['cpu_us_per_request']:.0f} | {'yes' if r['sustained'] else 'no'} |")
        best = max((r["target"] for r in steps if r["sustained"]), default=0)
        print(f"\nhighest sustained request rate: {best} req/s (1 output token per request)\n")
    with mock_server(50.0, 10.0) as url:
        print("| client (32 streams, TTFT 50 ms, ITL 10 ms) | TTFT p50 ms | TTFT mean ms | ITL p50 ms |")
        print("|---|---|---|---|")
        for r in accuracy(url):
            print(f"| {r['client']} | {r['ttft_p50_ms']:.2f} | {r['ttft_mean_ms']:.2f} | {r['itl_p50_ms']:.2f} |")


if __name__ == "__main__":
    main()
