"""Pieces of the load generator: SSE parsing, request bodies, arrival schedule, figures, config."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from engineforge.loadgen import BenchConfig, RequestRecord, Sample
from engineforge.loadgen.body import request_body
from engineforge.loadgen.metrics import summarize
from engineforge.loadgen.schedule import arrival_times
from engineforge.loadgen.sse import SSEDecoder, read_chunk


def test_sse_decoder_splits_events_across_reads():
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"a"') == []
    assert decoder.feed(b': 1}\r\n\r\ndata: [DONE]\n\n: comment\n\ndata: x') == ['{"a": 1}', "[DONE]"]
    assert decoder.flush() == ["x"]


def test_read_chunk_completions_chat_usage_error():
    text = read_chunk('{"choices": [{"text": "hi", "finish_reason": null}]}', "completions")
    assert (text.text, text.usage, text.error) == ("hi", None, None)
    role_only = read_chunk('{"choices": [{"delta": {"role": "assistant"}}]}', "chat")
    assert role_only.text == ""
    final = read_chunk('{"choices": [], "usage": {"completion_tokens": 3}}', "chat")
    assert final.usage == {"completion_tokens": 3}
    assert read_chunk('{"choices": [{"delta": {"content": "yo"}, "finish_reason": "length"}]}', "chat").finish_reason == "length"
    assert read_chunk('{"error": "boom"}', "chat").error == "boom"
    assert read_chunk('{"error": {"message": "bad"}}', "chat").error == "bad"
    assert read_chunk("[DONE]", "chat").done
    assert "unparseable" in read_chunk("{oops", "chat").error


def _config(**overrides) -> BenchConfig:
    return BenchConfig(**({"endpoint": "http://h:1/", "model": "m", "prompts": ["p"]} | overrides))


def test_request_body_variants():
    completions = request_body(_config(), Sample(prompt="p"))
    assert completions == {"model": "m", "stream": True, "max_tokens": 16, "prompt": "p",
                           "stream_options": {"include_usage": True}}
    chat = request_body(_config(api="chat", include_usage=False), Sample(prompt="p", output_tokens=7))
    assert chat["messages"] == [{"role": "user", "content": "p"}] and chat["max_tokens"] == 7
    assert "stream_options" not in chat
    field = request_body(_config(ignore_eos=True), Sample(prompt="p", output_tokens=9))
    assert field["ignore_eos"] is True and field["min_tokens"] == 9
    gen = request_body(_config(ignore_eos=True, ignore_eos_style="generation_config", temperature=0), Sample(prompt="p"))
    assert json.loads(gen["generation_config"]) == {"max_new_tokens": 16, "eos_token_id": -1, "do_sample": False}
    assert "ignore_eos" not in gen and gen["temperature"] == 0


def test_config_urls_and_validation():
    assert _config().url() == "http://h:1/v1/completions"
    assert _config(endpoint="http://h:1/v1", api="chat").url() == "http://h:1/v1/chat/completions"
    with pytest.raises(ValidationError, match="http"):
        _config(endpoint="h:1")
    with pytest.raises(ValidationError, match="extra"):
        _config(concurency=3)
    with pytest.raises(ValidationError, match="token-id prompts"):
        _config(api="chat", prompts=[Sample(prompt=[1, 2])])
    assert _config(prompts=["a", Sample(prompt="b")]).sample(3).prompt == "b"


def test_arrival_times_rate_and_burstiness():
    poisson = arrival_times(20000, rate=50.0, burstiness=1.0, seed=1)
    gaps = np.diff(poisson)
    assert poisson[0] == 0.0 and np.all(gaps >= 0)
    assert gaps.mean() == pytest.approx(1 / 50, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.05)  # exponential: cv 1
    bursty = np.diff(arrival_times(20000, rate=50.0, burstiness=0.25, seed=1))
    assert bursty.mean() == pytest.approx(1 / 50, rel=0.05)
    assert bursty.std() / bursty.mean() == pytest.approx(2.0, rel=0.05)  # gamma: cv 1/sqrt(shape)
    assert np.array_equal(arrival_times(5, 3.0, seed=7), arrival_times(5, 3.0, seed=7))


def _record(index, start, times, tokens=None, error=None, prompt_tokens=4):
    return RequestRecord(
        index=index, prompt_index=index, scheduled_s=start, start_s=start, ttft_s=times[0] if times else None,
        token_times_s=times, e2e_s=(times[-1] if times else 0.5), output_tokens=tokens or len(times),
        prompt_tokens=prompt_tokens, error=error,
    )


def test_summarize_hand_computed():
    records = [
        _record(0, 0.0, [0.1, 0.2, 0.3]),            # ttft 100, gaps 100 100, tpot 100, e2e 300
        _record(1, 0.5, [0.2, 0.22, 0.24, 0.26]),    # ttft 200, gaps 20 20 20, tpot 20, e2e 260 (ends 0.76)
        _record(2, 0.1, [], error="HTTP 500: x"),     # failed: counted, not measured (ends 0.6)
    ]
    s = summarize(records)
    assert (s["requests"], s["completed"], s["errors"]) == (3, 2, 1)
    assert s["error_rate"] == pytest.approx(1 / 3)
    assert s["duration_s"] == pytest.approx(0.76)
    assert s["request_throughput"] == pytest.approx(2 / 0.76)
    assert s["output_tokens_per_s"] == pytest.approx(7 / 0.76)
    assert s["total_tokens_per_s"] == pytest.approx((7 + 8) / 0.76)
    assert s["ttft_ms_mean"] == pytest.approx(150) and s["ttft_ms_p50"] == pytest.approx(150)
    assert s["tpot_ms_mean"] == pytest.approx(60)
    assert s["itl_ms_mean"] == pytest.approx(260 / 5) and s["itl_ms_p50"] == pytest.approx(20)
    assert s["e2e_ms_p99"] == pytest.approx(260 + 0.99 * 40)


def test_tpot_uses_usage_token_count():
    # the server packed 5 tokens into 2 chunks: TPOT divides by tokens, ITL sees chunks
    s = summarize([_record(0, 0.0, [0.1, 0.5], tokens=5)])
    assert s["tpot_ms_mean"] == pytest.approx(100) and s["itl_ms_mean"] == pytest.approx(400)


def test_summarize_nothing_measured_is_nan():
    s = summarize([_record(0, 0.0, [], error="timeout")])
    assert s["error_rate"] == 1.0 and math.isnan(s["ttft_ms_p99"]) and s["output_tokens_per_s"] == 0.0


@given(st.lists(st.tuples(st.floats(0.0, 5.0), st.floats(0.0, 5.0), st.integers(0, 500), st.booleans()), min_size=1,
                max_size=20))
def test_per_user_rate_never_exceeds_total_throughput(requests):
    # any starts, lengths, overlaps, idle gaps and failures: the busy time is at most the summed E2E
    records = [_record(index, start, [e2e], tokens=tokens, error="x" if failed else None)
               for index, (start, e2e, tokens, failed) in enumerate(requests)]
    s = summarize(records)
    assert math.isnan(s["tokens_per_s_per_user"]) or s["tokens_per_s_per_user"] <= s["output_tokens_per_s"]


def test_busy_time_leaves_out_the_time_no_request_was_open():
    # one after another with 0.1 s and 0.4 s between (the load generator's own time): busy 0.6, not 1.1
    records = [_record(0, 0.0, [0.1, 0.2], tokens=4), _record(1, 0.3, [0.2], tokens=2), _record(2, 0.9, [0.2], tokens=2)]
    s = summarize(records)
    assert s["duration_s"] == pytest.approx(1.1) and s["busy_s"] == pytest.approx(0.6)
    assert s["output_tokens_per_s"] == s["tokens_per_s_per_user"] == pytest.approx(8 / 0.6)  # equal: none overlap
    overlapping = summarize([*records, _record(3, 0.05, [0.3], tokens=6)])  # open 0.05-0.35: fills the 0.1 s gap
    assert overlapping["busy_s"] == pytest.approx(0.7)
    assert overlapping["tokens_per_s_per_user"] == pytest.approx(14 / 0.9)
    assert overlapping["output_tokens_per_s"] == pytest.approx(14 / 0.7)


def test_per_user_rate_is_tokens_over_e2e_not_one_over_tpot():
    # a long first chunk, then a burst: 1/TPOT says 1000 tok/s, the user waited 1 s for 11 tokens
    s = summarize([_record(0, 0.0, [0.98, 0.99, 1.0], tokens=11)])
    assert s["tokens_per_s_per_user"] == pytest.approx(11.0) and 1000 / s["tpot_ms_p50"] == pytest.approx(500)


def test_text_that_arrived_in_one_read_has_no_tpot_and_says_why():
    # eight events in one read share one arrival stamp: no time between tokens was seen (it read as TPOT 0 before)
    from engineforge.loadgen.metrics import missing_figures

    records = [_record(0, 0.0, [0.2] * 8, tokens=8), _record(1, 0.3, [0.5] * 8, tokens=8)]
    s = summarize(records)
    assert math.isnan(s["tpot_ms_p50"]) and math.isnan(s["itl_ms_mean"]) and s["ttft_ms_p50"] == pytest.approx(350)
    assert missing_figures(records, s)["tpot_ms_p50"] == (
        "each request's text arrived in one read: no time between tokens was seen")
    spread = summarize([*records, _record(2, 0.6, [0.1, 0.1, 0.3], tokens=3)])  # one request spread over two reads
    # the event that came with the first text has no gap that was seen (it added a gap of 0 before)
    assert spread["tpot_ms_p50"] == pytest.approx(100) and spread["itl_ms_mean"] == pytest.approx(200)


def test_events_of_one_read_share_the_time_since_the_previous_read():
    # reads at 0.1 (first text), 0.2 (three events) and 0.5: gaps 1/30 s x 3 and 0.3 s, mean (0.5 - 0.1) / 4 as before
    s = summarize([_record(0, 0.0, [0.1, 0.2, 0.2, 0.2, 0.5], tokens=5)])
    assert s["itl_ms_p50"] == pytest.approx(100 / 3) and s["itl_ms_mean"] == pytest.approx(100)
    assert s["chunks_per_request"] == 3 and s["tokens_per_chunk"] == pytest.approx(5 / 3)
