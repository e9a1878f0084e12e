"""Datasets: TensorRT-LLM JSON lines, prompt files, synthetic prompts from the model's tokenizer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engineforge.errors import UserError
from engineforge.loadgen.datasets import (
    load_dataset,
    load_trtllm_jsonl,
    sample_lengths,
    synthetic_samples,
    write_trtllm_jsonl,
)


def test_trtllm_jsonl_round_trip(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(
        '{"task_id": 0, "prompt": "hello", "output_tokens": 5}\n\n'
        '{"task_id": "b", "input_ids": [1, 2, 3], "output_tokens": 7}\n'
    )
    samples = load_dataset(path)
    assert [(s.task_id, s.prompt, s.output_tokens) for s in samples] == [(0, "hello", 5), ("b", [1, 2, 3], 7)]
    copy = write_trtllm_jsonl(samples, tmp_path / "copy.jsonl", default_output_tokens=1)
    assert load_trtllm_jsonl(copy) == samples


@pytest.mark.parametrize("line, message", [
    ('{"task_id": 0, "prompt": "a", "input_ids": [1], "output_tokens": 1}', "exactly one of prompt or input_ids"),
    ('{"task_id": 0, "prompt": "a"}', "missing output_tokens"),
    ('{"prompt": "a", "output_tokens": 2}', "missing task_id"),
    ('{"task_id": 0, "prompt": "a", "output_tokens": 0}', "output_tokens"),
    ("[1, 2]", "expected an object"),
    ("{nope", "not JSON"),
])
def test_trtllm_jsonl_errors_name_the_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"task_id": 0, "prompt": "ok", "output_tokens": 1}\n' + line + "\n")
    with pytest.raises(UserError, match=message) as error:
        load_dataset(path)
    assert f"{path}:2" in str(error.value)


def test_prompt_file_strings_and_objects(tmp_path):
    path = tmp_path / "prompts.json"
    path.write_text(json.dumps(["first", {"prompt": "second", "output_tokens": 3}]))
    samples = load_dataset(path)
    assert [(s.prompt, s.output_tokens) for s in samples] == [("first", None), ("second", 3)]
    path.write_text(json.dumps(["ok", {"text": "no prompt"}]))
    with pytest.raises(UserError, match=r"prompts.json\[1\]"):
        load_dataset(path)


def test_unknown_or_missing_dataset(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_dataset(tmp_path / "nope.jsonl")
    (tmp_path / "data.csv").write_text("a")
    with pytest.raises(UserError, match="unknown format '.csv'"):
        load_dataset(tmp_path / "data.csv")


def test_sample_lengths_distribution():
    lengths = np.array(sample_lengths(20000, 100, 20, np.random.default_rng(0)))
    assert lengths.mean() == pytest.approx(100, rel=0.01) and lengths.std() == pytest.approx(20, rel=0.03)
    assert sample_lengths(3, 5, 0, np.random.default_rng(0)) == [5, 5, 5]
    assert min(sample_lengths(1000, 2, 10, np.random.default_rng(0), maximum=8)) == 1


def test_synthetic_prompts_have_the_asked_token_lengths():
    from engineforge.sources.synthetic import train_tokenizer

    tokenizer = train_tokenizer(512)
    samples = synthetic_samples(tokenizer, 40, input_mean=50, output_mean=12, seed=3)
    lengths = [len(tokenizer.encode(s.prompt, add_special_tokens=False)) for s in samples]
    assert all(48 <= n <= 52 for n in lengths) and np.median(lengths) == 50
    assert {s.output_tokens for s in samples} == {12}
    assert synthetic_samples(tokenizer, 3, 20, 4, seed=3) == synthetic_samples(tokenizer, 3, 20, 4, seed=3)
    with pytest.raises(UserError, match="at least 1"):
        synthetic_samples(tokenizer, 3, 0, 4)
