"""Calibration text: read, hashed, cut into the calibration samples and the held-out slice.

One line of the dataset is one sample. The first `samples` lines calibrate; the next
`eval_samples` lines are never seen by calibration and measure the accuracy cost.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from engineforge.errors import UserError
from engineforge.model_roots import check_model_path
from engineforge.recipe import CalibrationSpec

DEFAULT_DATASET = Path(__file__).parent / "data" / "calibration.jsonl"


@dataclass(frozen=True)
class CalibrationTexts:
    path: Path
    sha256: str  # of the file's bytes: part of the quantize stage's key
    calibration: list[str]
    held_out: list[str]


def dataset_path(spec: CalibrationSpec, base_dir: Path | None = None) -> Path:
    if spec.dataset is None:
        return DEFAULT_DATASET
    if "://" in spec.dataset:
        raise UserError(f"quantize.calibration.dataset {spec.dataset!r}: only local JSON-lines or text files are "
                        "read; download a hub dataset first (hf download --repo-type dataset ORG/NAME)")
    path = Path(spec.dataset).expanduser()
    path = path if path.is_absolute() or base_dir is None else base_dir / path
    if not path.is_file():
        raise UserError(f"quantize.calibration.dataset: no file {path}; give a JSON-lines or text file")
    return check_model_path(path.resolve(), spec.dataset, "quantize.calibration.dataset")  # a worker's allowed roots


def dataset_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_texts(spec: CalibrationSpec, base_dir: Path | None = None) -> CalibrationTexts:
    path = dataset_path(spec, base_dir)
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    texts = [_text(line, path, number) for number, line in enumerate(lines, 1)] if path.suffix == ".jsonl" else lines
    needed = spec.samples + spec.eval_samples
    if len(texts) < needed:
        raise UserError(f"quantize.calibration: {path} has {len(texts)} samples, fewer than samples + eval_samples "
                        f"({spec.samples} + {spec.eval_samples}); lower them or give a larger dataset")
    return CalibrationTexts(path, dataset_sha256(path), texts[:spec.samples], texts[spec.samples:needed])


def _text(line: str, path: Path, number: int) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise UserError(f"{path}:{number}: not JSON ({error.msg}); each line must be an object with a `text` field") from error
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise UserError(f"{path}:{number}: each line must be an object with a string `text` field")
    return record["text"]


def batches(tokenizer, texts: list[str], seq_len: int, batch_size: int, device: str) -> list[dict]:
    """Right-padded token batches ({input_ids, attention_mask}), each text cut to seq_len tokens."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out = []
    for start in range(0, len(texts), batch_size):
        rows = [tokenizer(text)["input_ids"][:seq_len] for text in texts[start:start + batch_size]]
        width = max(len(row) for row in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = torch.tensor(row)
            mask[i, :len(row)] = 1
        out.append({"input_ids": ids.to(device), "attention_mask": mask.to(device)})
    return out
