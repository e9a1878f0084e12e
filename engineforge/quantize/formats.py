"""The quantization formats a recipe can ask for, as ModelOpt configs, and what each needs.

ModelOpt 0.47 configs are dicts whose `quant_cfg` is a list of {quantizer_name, cfg | enable}
entries applied in order, so a later entry (a KV cache format, an exclusion) overrides an earlier one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from engineforge.errors import UserError


@dataclass(frozen=True)
class Format:
    modelopt_config: str  # name in modelopt.torch.quantization
    quant_algo: str  # what the export writes in hf_quant_config.json `quantization.quant_algo`
    weight_bits: float  # bits per decoder weight as stored (scales not counted)
    block_size: int | None = None  # weights are quantized in blocks of this many input features
    needs_cuda: bool = False  # the fake-quantized forward pass (calibration, accuracy) needs a GPU


# quant_algo values as ModelOpt 0.47's export writes them (modelopt/torch/export/model_config.py QUANTIZATION_*).
FORMATS: dict[str, Format] = {
    "fp8": Format("FP8_DEFAULT_CFG", "FP8", 8),
    "int4_awq": Format("INT4_AWQ_CFG", "W4A16_AWQ", 4, block_size=128),
    "w4a8_awq": Format("W4A8_AWQ_BETA_CFG", "W4A8_AWQ", 4, block_size=128),
    # NVFP4's dynamic block quantization asserts its amax is a CUDA tensor (seen with ModelOpt 0.47 on CPU).
    "nvfp4": Format("NVFP4_DEFAULT_CFG", "NVFP4", 4, block_size=16, needs_cuda=True),
    "int8_sq": Format("INT8_SMOOTHQUANT_CFG", "W8A8_SQ_PER_CHANNEL", 8),
}
KV_CACHE_CONFIGS = {"fp8": "FP8_KV_CFG", "nvfp4": "NVFP4_KV_CFG"}
KV_CACHE_ALGOS = {"fp8": "FP8", "nvfp4": "NVFP4", "none": None}


def modelopt_config(format: str, kv_cache: str, exclude: list[str]) -> dict[str, Any]:
    """The config `mtq.quantize` takes: the format's, plus the KV cache's entries, plus exclusions."""
    import modelopt.torch.quantization as mtq

    config = copy.deepcopy(getattr(mtq, FORMATS[format].modelopt_config))
    if kv_cache != "none":
        config = mtq.update_quant_cfg_with_kv_cache_quant(config, getattr(mtq, KV_CACHE_CONFIGS[kv_cache])["quant_cfg"])
    config["quant_cfg"] = list(config["quant_cfg"]) + [
        {"quantizer_name": f"*{pattern}*", "enable": False} for pattern in exclude
    ]
    return config


def check_shape(format: str, config: dict[str, Any], origin: str, tensor_parallel: int = 1) -> None:
    """Block formats need every linear layer's input width, per tensor-parallel rank when the rank
    files are split here, to be a whole number of blocks.

    ModelOpt's exports refuse partial blocks only after calibration ("Cannot pack weight with input
    dimension 64 and block size 128"; per rank: "Weight shape 128 of each TP tp=2 is not divisible for
    block size 128", modelopt/torch/export/postprocess.py check_weight_shape_valid); checked here first.
    """
    block = FORMATS[format].block_size
    if block is None:
        return
    widths = {name: config.get(name) for name in ("hidden_size", "intermediate_size")}
    bad = {name: width for name, width in widths.items() if isinstance(width, int) and width % (block * tensor_parallel)}
    if bad:
        shown = ", ".join(f"{name} {width}" for name, width in bad.items())
        per_rank = f" x parallel.tensor {tensor_parallel}" if tensor_parallel > 1 else ""
        raise UserError(f"quantize.format {format}: {origin} has {shown}, not a multiple of the format's "
                        f"block size {block}{per_rank}; pick fp8 or int8_sq, or a model whose widths divide by "
                        f"{block * tensor_parallel}")


def check_device(format: str, device: str) -> None:
    if FORMATS[format].needs_cuda and device != "cuda":
        raise UserError(f"quantize.format {format}: ModelOpt's {format} forward pass needs a CUDA GPU "
                        f"(calibration and the accuracy check run it); run on a GPU worker or pick fp8/int4_awq")


def weight_bits(quant_algo: str | None) -> float | None:
    """Stored bits per decoder weight of an export's quant_algo (None: not a format made here)."""
    return next((f.weight_bits for f in FORMATS.values() if f.quant_algo == quant_algo), None)
