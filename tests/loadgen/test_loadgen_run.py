"""run_benchmark against the loopback mock server: figures, records, errors, threads, JSON."""

from __future__ import annotations

import asyncio
import json
import math
import threading

import pytest

from engineforge.loadgen import BenchConfig, BenchResult, run_benchmark
from tests.doubles.openai_server import mock_server

SUMMARY_KEYS = {
    "requests", "completed", "errors", "error_rate", "duration_s", "request_throughput",
    "output_tokens_per_s", "total_tokens_per_s",
    *(f"{name}_ms_{stat}" for name in ("ttft", "tpot", "itl", "e2e") for stat in ("mean", "p50", "p90", "p99")),
}


@pytest.fixture(scope="module")
def fast_server():
    with mock_server(2.0, 1.0) as url:
        yield url


def config(url: str, **overrides) -> BenchConfig:
    return BenchConfig(**({"endpoint": url, "model": "mock", "prompts": ["a", "b", "c"], "requests": 6,
                           "concurrency": 2, "max_tokens": 5} | overrides))


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_summary_and_records(fast_server, api):
    result = run_benchmark(config(fast_server, api=api))
    assert SUMMARY_KEYS <= set(result.summary)
    assert result.summary["requests"] == 6 and result.summary["completed"] == 6 and result.summary["errors"] == 0
    assert [r.prompt_index for r in result.records] == [0, 1, 2, 3, 4, 5]
    assert {r.output_text for r in result.records} == {" t0 t1 t2 t3 t4"}
    assert all(r.output_tokens == 5 and len(r.token_times_s) == 5 for r in result.records)
    # Rates are over the time a request was open (busy_s), which a loaded machine's gap between two sends
    # makes shorter than first send to last byte (duration_s).
    assert result.summary["output_tokens_per_s"] == pytest.approx(30 / result.summary["busy_s"])
    assert result.summary["busy_s"] <= result.summary["duration_s"]


def test_counts_chunks_without_usage_and_done():
    with mock_server(1.0, 1.0, "--no-usage", "--no-done") as url:
        result = run_benchmark(config(url, max_tokens=4))
    assert result.summary["errors"] == 0
    assert all(r.output_tokens == 4 and r.prompt_tokens is None for r in result.records)


def test_errors_are_counted_not_raised(fast_server):
    result = run_benchmark(config(fast_server, prompts=["!status=503", "ok", "!error"], requests=6, warmup_requests=0))
    by_prompt = {r.prompt_index: r.error for r in result.records}
    assert by_prompt[0].startswith("HTTP 503") and by_prompt[1] is None and "mid-stream" in by_prompt[2]
    assert result.summary["errors"] == 4 and result.summary["error_rate"] == pytest.approx(4 / 6)


def test_unreachable_endpoint_is_all_errors():
    result = run_benchmark(config("http://127.0.0.1:9", requests=3, warmup_requests=0, timeout_s=5))
    assert result.summary["errors"] == 3 and math.isnan(result.summary["ttft_ms_p50"])
    assert json.loads(json.dumps(result.to_json()))["summary"]["ttft_ms_p50"] is None


def test_warmup_is_excluded(fast_server):
    result = run_benchmark(config(fast_server, requests=3, warmup_requests=4))
    assert result.summary["requests"] == 3 and len(result.records) == 3


def test_runs_inside_a_running_loop_and_in_a_thread(fast_server):
    async def inside_loop() -> BenchResult:
        return run_benchmark(config(fast_server, requests=2))

    assert asyncio.run(inside_loop()).summary["completed"] == 2
    results = []
    thread = threading.Thread(target=lambda: results.append(run_benchmark(config(fast_server, requests=2))))
    thread.start()
    thread.join()
    assert results[0].summary["completed"] == 2


def test_request_rate_mode_follows_the_schedule(fast_server):
    result = run_benchmark(config(fast_server, requests=10, concurrency=10, request_rate=200.0, burstiness=0.5))
    scheduled = [r.scheduled_s for r in result.records]
    assert scheduled == sorted(scheduled) and scheduled[0] == 0.0
    assert all(r.start_s >= r.scheduled_s for r in result.records)
    assert result.summary["completed"] == 10


def test_json_round_trip(fast_server, tmp_path):
    result = run_benchmark(config(fast_server))
    path = result.write_json(tmp_path / "out" / "validation.json")
    data = json.loads(path.read_text())
    assert set(data) == {"config", "summary", "records", "started_at", "gpus", "missing"}
    assert BenchResult.read_json(path).missing == result.missing
    assert BenchResult.read_json(path).records == result.records
