"""The figures on a served double over HTTP when text arrives in bursts, and at concurrency 1."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from engineforge.loadgen import BenchConfig, run_benchmark
from tests.doubles.openai_server import served, url


@pytest.fixture(autouse=True)
def quick_switches():
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)  # the server's thread shares this process: it gets the GIL quickly
    yield
    sys.setswitchinterval(interval)


def config(server, **overrides) -> BenchConfig:
    return BenchConfig(**({"endpoint": url(server), "model": "mock", "prompts": ["a", "b"], "requests": 6,
                           "concurrency": 2, "max_tokens": 8, "warmup_requests": 0} | overrides))


def test_coalesced_events_give_no_zero_gaps_and_are_reported_as_bursts():
    # the server writes four tokens at a time, 20 ms of decoding apart: each read holds four events, one stamp
    with served(ttft_ms=10.0, itl_ms=5.0, burst=4) as server:
        result = run_benchmark(config(server))
    assert all(len(set(r.token_times_s)) < len(r.token_times_s) for r in result.records)  # the reads coalesced
    s = result.summary
    assert s["itl_ms_p50"] > 0 and np.diff(result.records[0].token_times_s).min() == 0  # np.diff alone said 0
    assert s["itl_ms_p50"] == pytest.approx(5.0, rel=0.5)  # a 20 ms read shared by its four events
    assert s["tokens_per_chunk"] == pytest.approx(4.0) and s["chunks_per_request"] == pytest.approx(2.0)


def test_at_concurrency_one_per_user_equals_total_and_the_harness_gaps_are_left_out():
    with served(ttft_ms=5.0, itl_ms=2.0) as server:
        result = run_benchmark(config(server, concurrency=1))
    s = result.summary
    # the cause of the old excess: first send to last byte holds the load generator's gaps between requests
    assert s["duration_s"] > s["busy_s"] == math.fsum(r.e2e_s for r in result.records)
    assert s["output_tokens"] / s["duration_s"] < s["tokens_per_s_per_user"]  # the old total: below per user
    assert s["tokens_per_s_per_user"] == s["output_tokens_per_s"]  # no two requests overlap


def test_the_independent_client_divides_by_the_same_busy_time():
    # bench/gpu_check.py compares the two clients' output tok/s: both leave out the time no request was open
    from bench.independent_client import busy_seconds

    assert busy_seconds([(0.9, 1.1), (0.0, 0.2), (0.3, 0.5), (0.05, 0.35)]) == pytest.approx(0.7)
