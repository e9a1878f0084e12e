"""The figures of a run: counts, throughput and latency statistics from the request records.

TTFT: first text after sending. TPOT: (last text - first text) / (output tokens - 1), per request.
ITL: every gap between consecutive text chunks, all requests pooled. E2E: send to last byte.
Latencies cover successful requests only; a statistic with nothing to measure is NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from engineforge.loadgen.records import RequestRecord

PERCENTILES = (50, 90, 99)
LATENCIES = ("ttft", "tpot", "itl", "e2e")


def latency_stats(name: str, seconds: Sequence[float] | np.ndarray) -> dict[str, float]:
    """`{name}_ms_mean`, `_p50`, `_p90`, `_p99` of the values (given in seconds)."""
    values = np.asarray(seconds, dtype=float) * 1000.0
    if values.size == 0:
        return {f"{name}_ms_mean": math.nan} | {f"{name}_ms_p{p}": math.nan for p in PERCENTILES}
    points = np.percentile(values, PERCENTILES)
    return {f"{name}_ms_mean": float(values.mean())} | {
        f"{name}_ms_p{p}": float(v) for p, v in zip(PERCENTILES, points)
    }


def latencies(records: Sequence[RequestRecord]) -> dict[str, np.ndarray]:
    """Per-latency arrays in seconds over the successful records."""
    ok = [r for r in records if r.ok]
    ttft = [r.ttft_s for r in ok if r.ttft_s is not None]
    tpot = [
        (r.token_times_s[-1] - r.token_times_s[0]) / (r.output_tokens - 1)
        for r in ok
        if r.output_tokens > 1 and r.token_times_s
    ]
    gaps = [np.diff(r.token_times_s) for r in ok if len(r.token_times_s) > 1]
    itl = np.concatenate(gaps) if gaps else np.empty(0)
    e2e = [r.e2e_s for r in ok if r.e2e_s is not None]
    return {"ttft": np.asarray(ttft), "tpot": np.asarray(tpot), "itl": itl, "e2e": np.asarray(e2e)}


def run_duration(records: Sequence[RequestRecord]) -> float:
    """First send to last byte received, over all records."""
    if not records:
        return 0.0
    first = min(r.start_s for r in records)
    last = max(r.start_s + (r.e2e_s or 0.0) for r in records)
    return last - first


def summarize(records: Sequence[RequestRecord]) -> dict[str, float]:
    ok = [r for r in records if r.ok]
    duration = run_duration(records)
    output_tokens = sum(r.output_tokens for r in ok)
    prompt_tokens = sum(r.prompt_tokens or 0 for r in ok)

    def per_s(amount: float) -> float:
        return amount / duration if duration > 0 else math.nan

    summary = {
        "requests": float(len(records)),
        "completed": float(len(ok)),
        "errors": float(len(records) - len(ok)),
        "error_rate": (len(records) - len(ok)) / len(records) if records else math.nan,
        "duration_s": duration,
        "request_throughput": per_s(len(ok)),
        "output_tokens": float(output_tokens),
        "prompt_tokens": float(prompt_tokens),
        "output_tokens_per_s": per_s(output_tokens),
        "total_tokens_per_s": per_s(output_tokens + prompt_tokens),
    }
    for name, values in latencies(records).items():
        summary |= latency_stats(name, values)
    # time the harness took to put a request on the wire after the load pattern asked for it
    summary |= latency_stats("send_lag", [r.start_s - r.scheduled_s for r in records])
    return summary
