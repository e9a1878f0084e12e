"""The harness times what the server did: against a loopback server with known delays it reports
TTFT, ITL and TPOT close to the delays the server really kept (GET /mock/timings), at 1 and at 32
concurrent requests.

This checks that the right moments are stamped (the body written, each chunk arrived), not how
precise they are on this machine: a harness that started its clock at connect, stamped after the
whole stream or lost chunks is off by a whole delay. The tolerance is a tenth of each delay plus
1 ms, so a loaded CI machine preempting the harness for a few milliseconds cannot fail it. The
precision figure (TTFT within 2 ms, ITL within 1 ms) is measured by bench/loadgen_bench.py on a
quiet machine and recorded in BENCHMARKS.md, as timings belong there and not in tests.
"""

from __future__ import annotations

import statistics

import httpx
import pytest

from engineforge.loadgen import BenchConfig, run_benchmark
from tests.doubles.openai_server import mock_server

TTFT_MS, ITL_MS, TOKENS = 200.0, 40.0, 8


def tolerance(delay_ms: float) -> float:
    return 0.1 * delay_ms + 1.0


@pytest.fixture(scope="module")
def server():
    with mock_server(TTFT_MS, ITL_MS) as url:
        yield url


@pytest.mark.parametrize("concurrency, requests", [(1, 8), (32, 64)])
def test_reports_the_ttft_and_itl_the_server_kept(server, concurrency, requests):
    config = BenchConfig(
        endpoint=server, model="mock", prompts=["x"], requests=requests, concurrency=concurrency,
        warmup_requests=concurrency, max_tokens=TOKENS,
    )
    httpx.get(f"{server}/mock/timings").raise_for_status()  # forget earlier tests' requests
    result = run_benchmark(config)
    kept = httpx.get(f"{server}/mock/timings").json()
    kept_ttft_ms, kept_itl_ms = (1000 * statistics.median(kept[name]) for name in ("ttft_s", "itl_s"))
    summary = result.summary
    assert summary["completed"] == requests
    assert all(len(r.token_times_s) == TOKENS for r in result.records)  # every chunk stamped
    assert kept_ttft_ms >= TTFT_MS and kept_itl_ms > 0  # the server kept (at least) its delays
    # The client's TTFT spans the server's (sent before the server read it, read after it wrote)
    assert kept_ttft_ms - 0.5 <= summary["ttft_ms_p50"] <= kept_ttft_ms + tolerance(TTFT_MS)
    assert summary["itl_ms_p50"] == pytest.approx(kept_itl_ms, abs=tolerance(ITL_MS))
    assert summary["tpot_ms_p50"] == pytest.approx(kept_itl_ms, abs=tolerance(ITL_MS))
