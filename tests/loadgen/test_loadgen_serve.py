"""The load generator and the accuracy check against the reference server, `transformers serve`
(CPU, continuous batching) on the tiny synthetic model: what it streams is parsed right."""

from __future__ import annotations

import pytest

from engineforge.loadgen import BenchConfig, run_benchmark
from engineforge.measure.accuracy import AccuracyConfig, check_accuracy

pytestmark = pytest.mark.integration
PROMPTS = ["Once upon a time", "The capital of France is", "def fibonacci(n):"]


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_streams_parse_with_exact_lengths(tiny_served, api):
    url, model = tiny_served
    result = run_benchmark(BenchConfig(
        endpoint=url, model=model, api=api, prompts=PROMPTS, requests=4, concurrency=2, max_tokens=6,
        ignore_eos=True, ignore_eos_style="generation_config",
    ))
    assert result.summary["errors"] == 0, [r.error for r in result.records]
    for record in result.records:
        assert record.output_tokens == 6 and record.finish_reason == "length"
        assert record.prompt_tokens and record.output_text and 1 <= len(record.token_times_s) <= 6
    assert result.summary["tpot_ms_p50"] > 0 and result.summary["ttft_ms_p50"] > 0


def test_unknown_fields_are_errors_not_crashes(tiny_served):
    url, model = tiny_served
    result = run_benchmark(BenchConfig(endpoint=url, model=model, prompts=PROMPTS, requests=2, ignore_eos=True))
    assert result.summary["errors"] == 2 and result.records[0].error.startswith("HTTP 422")


def test_accuracy_against_in_process_transformers(tiny_served):
    url, model = tiny_served
    report = check_accuracy(AccuracyConfig(endpoint=url, model=model, reference_model=model, prompts=PROMPTS,
                                           max_tokens=8, logprobs=True))
    assert len(report.prompts) == 3 and all(p.error is None for p in report.prompts)
    assert all(p.reference_tokens for p in report.prompts)
    # same weights, same dtype: the tiny_served greedy decode reproduces the reference
    assert report.token_agreement == 1.0 and report.exact_match_rate == 1.0
    assert all(p.logprob_max_abs_diff is None for p in report.prompts)  # transformers serve sends none
