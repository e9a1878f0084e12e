"""One post-training quantization: calibrate with ModelOpt, measure against the source, export.

The output directory holds
- `export/`: ModelOpt's unified Hugging Face checkpoint (quantized weights and scales,
  `hf_quant_config.json`, `quantization_config` in `config.json`, tokenizer): what TensorRT-LLM loads;
- `fakequant/`: the fake-quantized model saved with ModelOpt's Hugging Face checkpointing
  (`modelopt_state.pth` beside the weights): what the reference runtime serves. Plain transformers
  must not load `export/`: it does not know `quant_method: modelopt` and reads FP8/INT8 codes as
  numbers (garbage, with only a warning);
- `accuracy.json`: the figures.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from engineforge.checkpoint.hf_reader import check_model_dir
from engineforge.quantize import accuracy, calibration, formats, host_memory
from engineforge.recipe.schema import QuantizeSpec
from engineforge.versions import package_version

EXPORT_DIR = "export"
FAKEQUANT_DIR = "fakequant"
ACCURACY_FILE = "accuracy.json"
TORCH_DTYPES = {"float32", "float16", "bfloat16"}

Progress = Callable[[int, int], None]  # (samples calibrated, samples in all)


@dataclass
class QuantizeReport:
    export_dir: Path
    fakequant_dir: Path
    figures: accuracy.AccuracyFigures
    hf_quant_config: dict
    calibration_sha256: str
    modelopt_version: str | None
    samples: int
    calibration_s: float
    device: str


def check(spec: QuantizeSpec, model_dir: Path, device: str, tensor_parallel: int = 1) -> None:
    """Everything that can be refused before loading the model; `tensor_parallel`: the split of the
    rank files written from the result (1 when the runtime loads the unified export whole)."""
    formats.check_device(spec.format, device)
    formats.check_shape(spec.format, check_model_dir(model_dir, contained=False), str(model_dir), tensor_parallel)


def quantize_model(
    model_dir: Path,
    spec: QuantizeSpec,
    out_dir: Path,
    device: str = "cpu",
    dtype: str = "auto",
    base_dir: Path | None = None,
    on_progress: Progress | None = None,
    tensor_parallel: int = 1,
    available: Callable[[], int] = host_memory.available_bytes,
) -> QuantizeReport:
    import torch
    import modelopt.torch.opt as mto
    import modelopt.torch.quantization as mtq
    from modelopt.torch.export import export_hf_checkpoint
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check(spec, model_dir, device, tensor_parallel)
    if device == "cpu":  # on CUDA the host holds the weights only on their way to the GPU
        host_memory.check(model_dir, "calibration", dtype, available)
    texts = calibration.read_texts(spec.calibration, base_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=getattr(torch, dtype) if dtype in TORCH_DTYPES else "auto"
    ).to(device).eval()
    cal = spec.calibration
    held_out = calibration.batches(tokenizer, texts.held_out, cal.seq_len, cal.batch_size, device)
    source = accuracy.held_out_logits(model, held_out)
    calibration_batches = calibration.batches(tokenizer, texts.calibration, cal.seq_len, cal.batch_size, device)

    def forward_loop(m) -> None:
        # AWQ calls the loop more than once (search, then clip); progress counts each pass's samples.
        done = 0
        with torch.no_grad():
            for batch in calibration_batches:
                m(**batch)
                done += batch["input_ids"].shape[0]
                if on_progress:
                    on_progress(done, len(texts.calibration))

    started = time.perf_counter()
    mtq.quantize(model, formats.modelopt_config(spec.format, spec.kv_cache, spec.exclude), forward_loop)
    calibration_s = time.perf_counter() - started
    figures = accuracy.compare(source, accuracy.held_out_logits(model, held_out), held_out)
    del source

    fakequant_dir, export_dir = out_dir / FAKEQUANT_DIR, out_dir / EXPORT_DIR
    mto.enable_huggingface_checkpointing()  # save_pretrained then writes modelopt_state.pth too
    with _without_transformers_progress_bars():  # the stage reports its own progress
        model.save_pretrained(fakequant_dir)
        tokenizer.save_pretrained(fakequant_dir)
        # Last: the export rewrites modules in place. dtype given: save_pretrained leaves config.dtype a
        # string, which the export would pass to Tensor.to as a device.
        export_hf_checkpoint(model, dtype=model.dtype, export_dir=export_dir)
        tokenizer.save_pretrained(export_dir)  # export_hf_checkpoint does not copy the tokenizer
    (out_dir / ACCURACY_FILE).write_text(figures.model_dump_json(indent=1) + "\n")
    return QuantizeReport(
        export_dir=export_dir, fakequant_dir=fakequant_dir, figures=figures,
        hf_quant_config=json.loads((export_dir / "hf_quant_config.json").read_text()),
        calibration_sha256=texts.sha256, modelopt_version=package_version("nvidia-modelopt"),
        samples=len(texts.calibration), calibration_s=calibration_s, device=device,
    )


@contextlib.contextmanager
def _without_transformers_progress_bars() -> Iterator[None]:
    """transformers' own "Writing model shards" bars, off while the checkpoints are written."""
    from transformers.utils import logging as transformers_logging

    shown = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            transformers_logging.enable_progress_bar()
