"""The figures of a run: counts, throughput and latency statistics from the request records.

TTFT: first text after sending. TPOT: (last text - first text) / (output tokens - 1), per request
whose text came in more than one read (several events in one read arrive at one instant: a loaded server or
network flushing a burst, not a time between tokens). ITL: every gap between consecutive text chunks of those
requests, pooled. E2E: send to last byte. Tokens/s per user: output tokens / E2E summed over requests, the rate a
user waiting for the whole answer saw (1/TPOT is not: bursts after a long first chunk put it far above the total).
A ratio of sums, not a median: while at least one request is open the run lasts at most the summed E2E, so it never
exceeds output tokens/s; a median of per-request rates can. Latencies cover successful requests only; a statistic with nothing
to measure is NaN in the summary and named, with the reason, by `missing_figures`.
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
    # Text that arrived in one read says nothing of the time between tokens (it was TPOT 0 before).
    timed = [r for r in ok if spread_over_reads(r)]
    tpot = [(r.token_times_s[-1] - r.token_times_s[0]) / (r.output_tokens - 1) for r in timed if r.output_tokens > 1]
    gaps = [np.diff(r.token_times_s) for r in timed]
    itl = np.concatenate(gaps) if gaps else np.empty(0)
    e2e = [r.e2e_s for r in ok if r.e2e_s is not None]
    return {"ttft": np.asarray(ttft), "tpot": np.asarray(tpot), "itl": itl, "e2e": np.asarray(e2e)}


def spread_over_reads(record: RequestRecord) -> bool:
    """Its text arrived at more than one instant (one read stamps every event it holds alike)."""
    return len(set(record.token_times_s)) > 1


def per_user_rate(ok: Sequence[RequestRecord]) -> float:
    """Output tokens / E2E, both summed over successful requests that produced text; NaN when none did."""
    done = [r for r in ok if r.output_tokens > 0 and r.e2e_s]
    return sum(r.output_tokens for r in done) / sum(r.e2e_s for r in done) if done else math.nan


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
        # about 1 when the server streams token by token; more when tokens arrive in bursts
        "tokens_per_s_per_user": per_user_rate(ok),
        "tokens_per_chunk": output_tokens / chunks if (chunks := sum(len(r.token_times_s) for r in ok)) else math.nan,
    }
    for name, values in latencies(records).items():
        summary |= latency_stats(name, values)
    # time the harness took to put a request on the wire after the load pattern asked for it
    summary |= latency_stats("send_lag", [r.start_s - r.scheduled_s for r in records])
    return summary


def missing_figures(records: Sequence[RequestRecord], summary: dict[str, float]) -> dict[str, str]:
    """Each summary figure that is NaN, with why nothing could be measured (for tables, tags, gates)."""
    ok = [r for r in records if r.ok]
    streamed = [r for r in ok if r.token_times_s]
    if not records:
        cause = {"": "no request was sent"}
    elif not ok:
        cause = {"": "no request succeeded"}
    elif not streamed:
        cause = {"": "no request streamed any text"}
    else:
        cause = {"": "the run took no measurable time"}
    chunked = [r for r in streamed if spread_over_reads(r)]
    if streamed and not chunked:
        cause |= dict.fromkeys(("tpot", "itl", "tokens_per_chunk"), "each request's text arrived in one read: no time between tokens was seen")
    elif chunked and not [r for r in chunked if r.output_tokens > 1]:
        cause["tpot"] = "no request reported more than one output token"
    return {
        name: cause.get(name.split("_ms_")[0] if "_ms_" in name else name, cause[""])
        for name, value in summary.items()
        if isinstance(value, float) and math.isnan(value)
    }
