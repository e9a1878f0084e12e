"""Calibration text: read, hashed, cut into the calibration samples and the held-out slice.

One line (JSON lines, text) or row (parquet) of the dataset is one sample. The first `samples`
calibrate; the next `eval_samples` are never seen by calibration and measure the accuracy cost.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from engineforge.errors import UserError
from engineforge.model.roots import check_model_path
from engineforge.quantize import hub_data
from engineforge.recipe.schema import CalibrationSpec

DEFAULT_DATASET = Path(__file__).parent / "data" / "calibration.jsonl"


@dataclass(frozen=True)
class CalibrationTexts:
    files: list[Path]
    sha256: str  # of the files' bytes: part of the quantize stage's key
    calibration: list[str]
    held_out: list[str]


def dataset_files(spec: CalibrationSpec, base_dir: Path | None = None) -> list[Path]:
    """The dataset's files: the shipped default, a local file, or a hub dataset's split (cached)."""
    if spec.dataset is not None and hub_data.is_hub_dataset(spec.dataset):
        return hub_data.split_files(spec.dataset, spec.split)
    return [dataset_path(spec, base_dir)]


def dataset_path(spec: CalibrationSpec, base_dir: Path | None = None) -> Path:
    if spec.dataset is None:
        return DEFAULT_DATASET
    if "://" in spec.dataset:
        raise UserError(f"quantize.calibration.dataset {spec.dataset!r}: give a local JSON-lines or text file, "
                        "or a hub dataset as hf://datasets/ORG/NAME")
    path = Path(spec.dataset).expanduser()
    path = path if path.is_absolute() or base_dir is None else base_dir / path
    if not path.is_file():
        raise UserError(f"quantize.calibration.dataset: no file {path}; give a JSON-lines or text file")
    return check_model_path(path.resolve(), spec.dataset, "quantize.calibration.dataset")  # a worker's allowed roots


def dataset_sha256(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def read_texts(spec: CalibrationSpec, base_dir: Path | None = None) -> CalibrationTexts:
    files = dataset_files(spec, base_dir)
    texts = [text for path in files for text in _file_texts(path, spec.text_field)]
    needed = spec.samples + spec.eval_samples
    if len(texts) < needed:
        shown = files[0] if len(files) == 1 else f"{spec.dataset} ({len(files)} files)"
        raise UserError(f"quantize.calibration: {shown} has {len(texts)} samples, fewer than samples + eval_samples "
                        f"({spec.samples} + {spec.eval_samples}); lower them or give a larger dataset")
    return CalibrationTexts(files, dataset_sha256(files), texts[:spec.samples], texts[spec.samples:needed])


def _file_texts(path: Path, field: str) -> list[str]:
    if path.suffix == ".parquet":
        return _parquet_texts(path, field)
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if path.suffix in (".jsonl", ".json"):
        return [_text(line, path, number, field) for number, line in enumerate(lines, 1)]
    return lines


def _parquet_texts(path: Path, field: str) -> list[str]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    if field not in table.column_names:
        raise UserError(f"{path.name}: no column {field!r} (columns: {', '.join(table.column_names)}); "
                        "set quantize.calibration.text_field")
    return [text for text in table.column(field).to_pylist() if isinstance(text, str) and text.strip()]


def _text(line: str, path: Path, number: int, field: str) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise UserError(f"{path}:{number}: not JSON ({error.msg}); each line must be an object with a `{field}` field") from error
    if not isinstance(record, dict) or not isinstance(record.get(field), str):
        raise UserError(f"{path}:{number}: each line must be an object with a string `{field}` field "
                        "(quantize.calibration.text_field)")
    return record[field]


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
