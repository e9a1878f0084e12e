"""The figures of a run: counts, throughput and latency statistics from the request records.

A read is one piece of a response as the client received it; every text event in it has the same arrival stamp
(a loaded server or network flushing a burst). TTFT: first text after sending. TPOT: (last text - first text) /
(output tokens - 1), per request whose text came in more than one read. ITL: the time between text events as seen,
pooled over those requests: each read after the first shares the time since the previous read evenly among the
text events it brought (a read of one event gives its plain gap, so the mean is that of the plain gaps, (last -
first) / (events - 1), whenever the first text came alone); events that came with the first text have no gap that
was seen and add none.
Coalesced events never count as gaps of 0. E2E: send to last byte. Chunks: reads that brought text, per request;
tokens per chunk: output tokens per such read (about 1 when the server streams token by token, more in bursts).

Rates (output tokens/s, total tokens/s, requests/s) are over the busy time: the time at least one request was open,
the union of every request's send-to-last-byte span (`busy_s`). `duration_s`, first send to last byte, also holds
the load generator's own gaps (between one request's last byte and the next send, with no request open: it parses
a stream after it ends) and, in an open loop, the idle time between arrivals; neither is the server's time.
Tokens/s per user: output tokens / E2E summed over every request sent, the rate users waiting for whole answers
saw (1/TPOT is not: bursts after a long first chunk put it far above the total). A ratio of sums: the union of the
spans is never longer than their summed lengths, so per user <= total by construction, equal when no two requests
overlap (concurrency 1). NVIDIA AIPerf's output token throughput divides by its benchmark duration (first request
to last response, our `duration_s`) and its per-user throughput is 1/ITL per request, "not directly comparable" to
the total (AIPerf metrics reference); neither holds the inequality. Latencies cover successful requests only; a
statistic with nothing to measure is NaN in the summary and named, with the reason, by `missing_figures`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

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
    gaps = [read_gaps(r.token_times_s) for r in timed]
    itl = np.concatenate(gaps) if gaps else np.empty(0)
    e2e = [r.e2e_s for r in ok if r.e2e_s is not None]
    return {"ttft": np.asarray(ttft), "tpot": np.asarray(tpot), "itl": itl, "e2e": np.asarray(e2e)}


def read_gaps(token_times_s: Sequence[float]) -> np.ndarray:
    """The gaps between text events as seen: the time since the previous read, shared evenly by the events of each
    later read; none for the events that came with the first text."""
    instants, events = np.unique(token_times_s, return_counts=True)
    return np.repeat(np.diff(instants) / events[1:], events[1:])


def spread_over_reads(record: RequestRecord) -> bool:
    """Its text arrived at more than one instant (one read stamps every event it holds alike)."""
    return len(set(record.token_times_s)) > 1


def per_user_rate(records: Sequence[RequestRecord]) -> float:
    """Output tokens of the successful requests / E2E summed over every request (a failed one is time a user waited);
    NaN when no successful request produced text."""
    tokens = sum(r.output_tokens for r in records if r.ok)
    waited = math.fsum(r.e2e_s or 0.0 for r in records)
    return tokens / waited if tokens and waited > 0 else math.nan


def run_duration(records: Sequence[RequestRecord]) -> float:
    """First send to last byte received, over all records."""
    if not records:
        return 0.0
    first = min(r.start_s for r in records)
    last = max(r.start_s + (r.e2e_s or 0.0) for r in records)
    return last - first


def open_time(spans: Iterable[tuple[float, float]]) -> float:
    """The length of the union of (start, length) spans. Each span adds only what lies past the spans that started
    before it, never more than its own length, and the parts are summed exactly (`math.fsum`, as `per_user_rate`
    sums the E2E): so it is at most the summed lengths, and equal when none overlap."""
    reach, parts = -math.inf, []
    for start, length in sorted(spans):
        end = start + length
        parts.append(length if start >= reach else min(length, max(0.0, end - reach)))
        reach = max(reach, end)
    return math.fsum(parts)


def busy_time(records: Sequence[RequestRecord]) -> float:
    """The time at least one request was open: the union of the send-to-last-byte spans."""
    return open_time((record.start_s, record.e2e_s or 0.0) for record in records)


def summarize(records: Sequence[RequestRecord]) -> dict[str, float]:
    ok = [r for r in records if r.ok]
    streamed = [r for r in ok if r.token_times_s]
    chunks = sum(len(set(r.token_times_s)) for r in streamed)  # reads that brought text
    busy = busy_time(records)
    output_tokens = sum(r.output_tokens for r in ok)
    prompt_tokens = sum(r.prompt_tokens or 0 for r in ok)

    def per_s(amount: float) -> float:
        return amount / busy if busy > 0 else math.nan

    summary = {
        "requests": float(len(records)),
        "completed": float(len(ok)),
        "errors": float(len(records) - len(ok)),
        "error_rate": (len(records) - len(ok)) / len(records) if records else math.nan,
        "duration_s": run_duration(records),
        "busy_s": busy,
        "request_throughput": per_s(len(ok)),
        "output_tokens": float(output_tokens),
        "prompt_tokens": float(prompt_tokens),
        "output_tokens_per_s": per_s(output_tokens),
        "total_tokens_per_s": per_s(output_tokens + prompt_tokens),
        "tokens_per_s_per_user": per_user_rate(records),
        "chunks_per_request": chunks / len(streamed) if streamed else math.nan,
        "tokens_per_chunk": output_tokens / chunks if chunks else math.nan,
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
        cause |= dict.fromkeys(("tpot", "itl"), "each request's text arrived in one read: no time between tokens was seen")
    elif chunked and not [r for r in chunked if r.output_tokens > 1]:
        cause["tpot"] = "no request reported more than one output token"
    return {
        name: cause.get(name.split("_ms_")[0] if "_ms_" in name else name, cause[""])
        for name, value in summary.items()
        if isinstance(value, float) and math.isnan(value)
    }
