"""Refuse, before loading, a whole-model load into host memory that the host cannot hold: the CPU
calibration (ptq) and ModelOpt's TensorRT-LLM export (rank_files) load the full model, unlike the
streamed sharder, and an out-of-memory kill would come only after minutes of loading, without a reason.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engineforge.errors import UserError
from engineforge.model.shape import read_config

# Peak RSS above the already imported libraries, over the checkpoint's weight bytes, measured with
# engineforge.checkpoint.rss.PeakRss (2026-12-02, docs/notes/issue-14.md) on synthetic Llamas of 184-424 MB
# (the tiny model's 0.5 MB of weights vanish under the libraries' ~15 MB of buffers: 25-30x, meaningless):
# calibration fp8 1.7-1.85x (model, held-out logits, quantizers, the export's copies), int4_awq 2.8x
# (AWQ's search); rank export fp8 1.4-1.7x, int4_awq 2.0x (model plus the packed rank tensors). Rounded
# up so that a 2.8x format still fits.
LOADS = {
    "calibration": (3.0, "use a host with more memory, or calibrate on a GPU (the stage uses CUDA when one is visible)"),
    "ModelOpt's TensorRT-LLM export": (2.5, ("use a host with more memory, or runtime trtllm, which loads the "
                                             "unified Hugging Face export instead of rank files")),
}


def available_bytes() -> int:
    import psutil

    return psutil.virtual_memory().available  # Linux: /proc/meminfo MemAvailable


def safetensors_bytes(model_dir: Path) -> int:
    """The checkpoint's weight files as stored."""
    return sum(path.stat().st_size for path in Path(model_dir).glob("*.safetensors"))


def weight_bytes(model_dir: Path, dtype: str = "auto") -> int:
    """The model's weights once loaded: its safetensors bytes, rescaled when `dtype` converts them."""
    import torch

    size = safetensors_bytes(model_dir)
    config = read_config(model_dir)
    stored = config.get("dtype") or config.get("torch_dtype")
    if dtype == "auto" or not isinstance(getattr(torch, str(stored), None), torch.dtype):
        return size
    return size * getattr(torch, dtype).itemsize // getattr(torch, stored).itemsize


def check(model_dir: Path, load: str, dtype: str = "auto", available: Callable[[], int] = available_bytes) -> None:
    """One-line UserError when `load` (a LOADS key) of the model would not fit in the host's available memory."""
    factor, fix = LOADS[load]
    weights = weight_bytes(model_dir, dtype)
    needed, free = int(weights * factor), available()
    if needed > free:
        raise UserError(f"{model_dir}: {load} loads the whole model in host memory, about {needed / 1e9:.3g} GB "
                        f"({factor}x its {weights / 1e9:.3g} GB of weights), but {free / 1e9:.3g} GB is available; {fix}")
