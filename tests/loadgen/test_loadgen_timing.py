"""Acceptance: against a loopback server with known delays (first token 50 ms after the request,
then one every 10 ms), the harness reports TTFT within 2 ms and ITL within 1 ms of the truth,
at 1 and at 32 concurrent requests.

Medians are checked: on a shared 2-core machine another process can preempt the server or
the harness for milliseconds, which moves means and tails but not the median of 100+ values.
End-to-end latency is not: under load the mock server's 32 sender threads drift a few ms
behind their deadlines by the 20th token, which the harness reports faithfully.
"""

from __future__ import annotations

import pytest

from engineforge.loadgen import BenchConfig, run_benchmark
from tests.doubles.openai_server import mock_server

TTFT_MS, ITL_MS = 50.0, 10.0


@pytest.fixture(scope="module")
def server():
    with mock_server(TTFT_MS, ITL_MS) as url:
        yield url


@pytest.mark.parametrize("concurrency, requests", [(1, 10), (32, 96)])
def test_reports_known_ttft_and_itl(server, concurrency, requests):
    config = BenchConfig(
        endpoint=server, model="mock", prompts=["x"], requests=requests, concurrency=concurrency,
        warmup_requests=concurrency, max_tokens=20,
    )
    result = run_benchmark(config)
    summary = result.summary
    assert summary["completed"] == requests
    assert summary["ttft_ms_p50"] == pytest.approx(TTFT_MS, abs=2.0)
    assert summary["itl_ms_p50"] == pytest.approx(ITL_MS, abs=1.0)
    assert summary["tpot_ms_p50"] == pytest.approx(ITL_MS, abs=1.0)
