"""Calibration text: the shipped default, and one-line errors for datasets that cannot serve."""

from __future__ import annotations

import hashlib

import pytest

from engineforge.errors import UserError
from engineforge.quantize.calibration import DEFAULT_DATASET, read_texts
from engineforge.recipe.schema import CalibrationSpec


def test_default_dataset_splits_into_calibration_and_held_out():
    texts = read_texts(CalibrationSpec(samples=16, eval_samples=8))
    assert texts.files == [DEFAULT_DATASET] and texts.sha256 == hashlib.sha256(DEFAULT_DATASET.read_bytes()).hexdigest()
    assert len(texts.calibration) == 16 and len(texts.held_out) == 8
    assert not set(texts.calibration) & set(texts.held_out)


def test_text_file_is_one_sample_per_line(tmp_path):
    data = tmp_path / "lines.txt"
    data.write_text("one\n\ntwo\nthree\n")
    texts = read_texts(CalibrationSpec(dataset="lines.txt", samples=2, eval_samples=1), base_dir=tmp_path)
    assert (texts.calibration, texts.held_out) == (["one", "two"], ["three"])


@pytest.mark.parametrize("content,dataset,message", [
    ('{"text": "a"}\n', "d.jsonl", r"has 1 samples, fewer than samples \+ eval_samples \(16 \+ 8\)"),
    ('{"text": "a"}\nnot json\n', "d.jsonl", r"d.jsonl:2: not JSON"),
    ('{"prompt": "a"}\n', "d.jsonl", r"d.jsonl:1: each line must be an object with a string `text` field"),
    ("", "missing.jsonl", r"quantize.calibration.dataset: no file .*missing.jsonl"),
    ("", "s3://bucket/data.jsonl", r"or a hub dataset as hf://datasets/ORG/NAME"),
    ("", "hf://datasets/not-a-repo", r"expected hf://datasets/ORG/NAME"),
])
def test_bad_datasets_are_one_line_user_errors(tmp_path, content, dataset, message):
    if content:
        (tmp_path / dataset).write_text(content)
    with pytest.raises(UserError, match=message) as error:
        read_texts(CalibrationSpec(dataset=dataset), base_dir=tmp_path)
    assert "\n" not in str(error.value)


def test_json_lines_read_the_recipes_text_field(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"content": "a"}\n{"content": "b"}\n')
    texts = read_texts(CalibrationSpec(dataset="d.jsonl", text_field="content", samples=1, eval_samples=1), base_dir=tmp_path)
    assert (texts.calibration, texts.held_out) == (["a"], ["b"])
