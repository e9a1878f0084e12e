"""An independent streaming client for the A-B-A agreement check: httpx (not the stage's aiohttp),
threads (not asyncio), its own SSE parsing and clock. It sends the same JSON bodies as the stage's
load generator and reports output tok/s, TTFT p50 and ITL mean the same way they are defined there:
tok/s = completion tokens / the time at least one request was open (the union of send-to-last-byte spans: the
clients' own time between one request's end and the next send, with none open, is not the server's); TTFT =
first text after the body was sent; ITL = gaps between text events (this client stamps each event as it parses
it, so events of one read get tiny gaps, not one stamp: their mean is (last - first) / (events - 1), the stage's
too unless the first read brought several events). "Sent" is httpcore's own trace event for the end of the request body, the point
where the stage's client starts its clock too: connecting, encoding and thread scheduling before it are the
harness's time, not the server's (counting them made this client read TTFT about 11 ms higher at c=32).
"""

from __future__ import annotations

import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from engineforge.loadgen.metrics import open_time


def _one(client: httpx.Client, url: str, body: dict) -> dict:
    sent: list[float] = []
    times: list[float] = []
    tokens = 0

    def trace(event: str, info: dict) -> None:
        if event == "http11.send_request_body.complete" and not sent:
            sent.append(time.perf_counter())

    with client.stream("POST", url, json=body, extensions={"trace": trace}) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                continue
            event = json.loads(payload)
            if any(choice.get("text") for choice in event.get("choices") or ()):
                times.append(time.perf_counter())
            tokens = (event.get("usage") or {}).get("completion_tokens") or tokens
    start = sent[0]
    return {"start": start, "end": time.perf_counter(), "times": [t - start for t in times], "tokens": tokens or len(times)}


def busy_seconds(spans: list[tuple[float, float]]) -> float:
    """Length of the union of (start, end) spans: the time at least one request was open (the stage's definition)."""
    return open_time((start, end - start) for start, end in spans)


def run(url: str, bodies: list[dict], concurrency: int) -> dict[str, float]:
    """Closed loop of `concurrency` requests in flight over `bodies`; the three compared figures."""
    with httpx.Client(timeout=600, limits=httpx.Limits(max_connections=concurrency)) as client, \
            ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda body: _one(client, url, body), bodies))
    busy = busy_seconds([(r["start"], r["end"]) for r in results])
    gaps = [b - a for r in results for a, b in zip(r["times"], r["times"][1:])]
    return {
        "output_tokens_per_s": sum(r["tokens"] for r in results) / busy,
        "ttft_ms_p50": statistics.median(r["times"][0] for r in results if r["times"]) * 1e3,
        "itl_ms_mean": statistics.fmean(gaps) * 1e3 if gaps else float("nan"),
    }
