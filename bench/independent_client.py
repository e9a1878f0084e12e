"""An independent streaming client for the A-B-A agreement check: httpx (not the stage's aiohttp),
threads (not asyncio), its own SSE parsing and clock. It sends the same JSON bodies as the stage's
load generator and reports output tok/s, TTFT p50 and ITL mean the same way they are defined there:
tok/s = completion tokens / (first send to last byte); TTFT = first text; ITL = gaps between text events.
"""

from __future__ import annotations

import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx


def _one(client: httpx.Client, url: str, body: dict) -> dict:
    start = time.perf_counter()
    times: list[float] = []
    tokens = 0
    with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                continue
            event = json.loads(payload)
            if any(choice.get("text") for choice in event.get("choices") or ()):
                times.append(time.perf_counter() - start)
            tokens = (event.get("usage") or {}).get("completion_tokens") or tokens
    return {"start": start, "end": time.perf_counter(), "times": times, "tokens": tokens or len(times)}


def run(url: str, bodies: list[dict], concurrency: int) -> dict[str, float]:
    """Closed loop of `concurrency` requests in flight over `bodies`; the three compared figures."""
    with httpx.Client(timeout=600, limits=httpx.Limits(max_connections=concurrency)) as client, \
            ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda body: _one(client, url, body), bodies))
    duration = max(r["end"] for r in results) - min(r["start"] for r in results)
    gaps = [b - a for r in results for a, b in zip(r["times"], r["times"][1:])]
    return {
        "output_tokens_per_s": sum(r["tokens"] for r in results) / duration,
        "ttft_ms_p50": statistics.median(r["times"][0] for r in results if r["times"]) * 1e3,
        "itl_ms_mean": statistics.fmean(gaps) * 1e3 if gaps else float("nan"),
    }
