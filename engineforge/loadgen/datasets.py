"""Where prompts come from: TensorRT-LLM's JSON-lines datasets, a JSON file of real prompts, or
synthetic prompts of a token-length distribution made with the model's tokenizer.

TensorRT-LLM (trtllm-bench --dataset): one JSON object per line with `task_id`, either
`prompt` or `input_ids` (not both), and `output_tokens`.
Prompt file (.json): a list of strings, or of objects with `prompt` and optional `output_tokens`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from engineforge.errors import UserError
from engineforge.loadgen.config import Sample


def load_dataset(path: str | Path) -> list[Sample]:
    """A `.jsonl` TensorRT-LLM dataset or a `.json` prompt file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--dataset {path}: no such file; give a .jsonl (TensorRT-LLM) or .json (prompts) file")
    if path.suffix == ".jsonl":
        return load_trtllm_jsonl(path)
    if path.suffix == ".json":
        return load_prompt_file(path)
    raise UserError(f"--dataset {path}: unknown format {path.suffix!r}; use .jsonl (TensorRT-LLM) or .json (prompts)")


def load_trtllm_jsonl(path: Path) -> list[Sample]:
    samples = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"{where}: not JSON ({error.msg}); each line is one object") from None
        if not isinstance(entry, dict):
            raise UserError(f"{where}: expected an object with task_id, prompt or input_ids, output_tokens")
        if ("prompt" in entry) == ("input_ids" in entry):
            raise UserError(f"{where}: give exactly one of prompt or input_ids")
        for field in ("task_id", "output_tokens"):
            if field not in entry:
                raise UserError(f"{where}: missing {field}")
        samples.append(_sample(where, entry.get("prompt", entry.get("input_ids")), entry["output_tokens"], entry["task_id"]))
    if not samples:
        raise UserError(f"{path}: no samples; write one JSON object per line")
    return samples


def load_prompt_file(path: Path) -> list[Sample]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise UserError(f"{path}:{error.lineno}: not JSON ({error.msg})") from None
    if not isinstance(data, list) or not data:
        raise UserError(f"{path}: expected a non-empty list of prompts (strings or objects with prompt)")
    samples = []
    for index, entry in enumerate(data):
        where = f"{path}[{index}]"
        if isinstance(entry, str):
            samples.append(_sample(where, entry, None, index))
        elif isinstance(entry, dict) and isinstance(entry.get("prompt"), str):
            samples.append(_sample(where, entry["prompt"], entry.get("output_tokens"), entry.get("task_id", index)))
        else:
            raise UserError(f"{where}: expected a string or an object with a string prompt")
    return samples


def _sample(where: str, prompt: Any, output_tokens: Any, task_id: Any) -> Sample:
    try:
        return Sample(prompt=prompt, output_tokens=output_tokens, task_id=task_id)
    except ValidationError as error:
        problem = error.errors()[0]
        field = ".".join(str(part) for part in problem["loc"])
        raise UserError(f"{where}: {field}: {problem['msg']}") from None


def write_trtllm_jsonl(samples: list[Sample], path: str | Path, default_output_tokens: int) -> Path:
    """Write samples as a trtllm-bench dataset (so both tools can run the same requests)."""
    path = Path(path)
    lines = []
    for index, sample in enumerate(samples):
        key = "input_ids" if isinstance(sample.prompt, list) else "prompt"
        task_id = sample.task_id if sample.task_id is not None else index
        lines.append(json.dumps({"task_id": task_id, key: sample.prompt,
                                 "output_tokens": sample.output_tokens or default_output_tokens}))
    path.write_text("\n".join(lines) + "\n")
    return path


def sample_lengths(count: int, mean: float, stdev: float, rng: np.random.Generator, maximum: int | None = None) -> list[int]:
    """Token lengths from a normal distribution, rounded and clipped to [1, maximum]."""
    lengths = np.rint(rng.normal(mean, stdev, size=count)) if stdev > 0 else np.full(count, round(mean))
    return np.clip(lengths, 1, maximum or None).astype(int).tolist()


def synthetic_samples(
    tokenizer: Any,
    count: int,
    input_mean: float,
    output_mean: float,
    input_stdev: float = 0.0,
    output_stdev: float = 0.0,
    seed: int = 0,
) -> list[Sample]:
    """Prompts of random tokens, `input_len` tokens long as the tokenizer counts them.

    Random ids are decoded to text and re-encoded; the text is cut to the wanted length in
    tokens and decoded again, a few rounds, since a decode/encode round trip can merge tokens.
    """
    if input_mean < 1 or output_mean < 1:
        raise UserError("--input-len and --output-len must be at least 1 token")
    rng = np.random.default_rng(seed)
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    vocabulary = np.array([i for i in range(len(tokenizer)) if i not in special])
    inputs = sample_lengths(count, input_mean, input_stdev, rng)
    outputs = sample_lengths(count, output_mean, output_stdev, rng)
    samples = []
    for index, (input_len, output_len) in enumerate(zip(inputs, outputs)):
        ids = rng.choice(vocabulary, size=input_len).tolist()
        text = tokenizer.decode(ids)
        for _ in range(4):
            encoded = tokenizer.encode(text, add_special_tokens=False)
            if len(encoded) == input_len:
                break
            if len(encoded) < input_len:
                encoded += rng.choice(vocabulary, size=input_len - len(encoded)).tolist()
            text = tokenizer.decode(encoded[:input_len])
        samples.append(Sample(prompt=text, output_tokens=output_len, task_id=index))
    return samples


def load_tokenizer(name_or_path: str) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as error:
        raise UserError(f"--tokenizer {name_or_path}: cannot load a tokenizer ({error}); give the model directory") from None


def choose_samples(
    dataset: Path | None = None,
    input_len: int | None = None,
    output_len: int | None = None,
    input_stdev: float = 0.0,
    output_stdev: float = 0.0,
    tokenizer: str | None = None,
    prompts: list[str] | None = None,
    count: int = 1,
    seed: int = 0,
) -> list[Sample]:
    """The prompts of a command-line run: a dataset file, else synthetic prompts of --input-len
    tokens (the tokenizer is needed), else the prompts given."""
    if dataset is not None:
        if input_len is not None:
            raise UserError("--dataset and --input-len both given; a dataset brings its own prompts, drop one")
        return load_dataset(dataset)
    if input_len is not None:
        if tokenizer is None:
            raise UserError("--input-len needs the model's tokenizer: pass --tokenizer DIR (or a --model directory)")
        return synthetic_samples(load_tokenizer(tokenizer), count, input_len, output_len or 16, input_stdev,
                                 output_stdev, seed)
    if not prompts:
        raise UserError("no prompts: give --dataset FILE, --input-len N or --prompt TEXT")
    return [Sample(prompt=prompt) for prompt in prompts]
