"""Decode roofline: the fastest decode HBM bandwidth allows, and the share of it a run reached.

Each decode step reads the weights once (shared by the batch) and every in-flight request's KV
cache, and yields one token per request, so at concurrency c the step, hence TPOT, takes at
least (weight bytes + c x KV bytes per token x context) / HBM bandwidth. Achieved fraction =
that floor / measured TPOT p50. Weights and KV sizes come from the planner's model arithmetic
(engineforge.planner), at the quantized widths when the recipe quantizes (the quantize stage's output
is what is served), bandwidth from the planner's GPU catalogue or NVML.
"""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import BaseModel

from engineforge.errors import UserError
from engineforge.model.shape import ModelShape, read_model_shape
from engineforge.planner.memory import Precision, ServingLimits, kv_cache_bytes
from engineforge.recipe.parallel_layout import ParallelLayout
from engineforge.planner.speed import decode_bytes
from engineforge.recipe.schema import QuantizeSpec

SINGLE_GPU = ParallelLayout(tp=1, pp=1, ep=1)


class DecodeRoofline(BaseModel):
    hbm_bytes_s: float
    weight_bytes: float
    kv_bytes_per_token: float
    concurrency: int
    context_tokens: float

    @property
    def bytes_per_step(self) -> float:
        return self.weight_bytes + self.concurrency * self.kv_bytes_per_token * self.context_tokens

    @property
    def tpot_floor_ms(self) -> float:
        return self.bytes_per_step / self.hbm_bytes_s * 1e3

    @property
    def output_tokens_per_s(self) -> float:
        return self.concurrency * 1e3 / self.tpot_floor_ms

    def figures(self, tpot_ms_p50: float) -> dict[str, float]:
        fraction = self.tpot_floor_ms / tpot_ms_p50 if tpot_ms_p50 and math.isfinite(tpot_ms_p50) else math.nan
        return {
            "roofline_tpot_ms": self.tpot_floor_ms,
            "roofline_output_tokens_per_s": self.output_tokens_per_s,
            "roofline_fraction": fraction,
        }


def decode_roofline(
    shape: ModelShape, hbm_bytes_s: float, concurrency: int, context_tokens: float, dtype: str = "auto",
    kv_cache_dtype: str = "auto", quantize: QuantizeSpec | None = None,
) -> DecodeRoofline:
    """`quantize`: the recipe's quantize section; what is served then has its weight and KV widths."""
    precision = Precision.resolve(shape, dtype, kv_cache_dtype, quantize)
    one_token = ServingLimits(max_batch_size=1, max_seq_len=1, max_input_len=1)
    return DecodeRoofline(
        hbm_bytes_s=hbm_bytes_s,
        weight_bytes=decode_bytes(shape, SINGLE_GPU, precision),
        kv_bytes_per_token=kv_cache_bytes(shape, SINGLE_GPU, one_token, precision),
        concurrency=concurrency,
        context_tokens=context_tokens,
    )


def gpu_bandwidth(gpu_name: str, nvml_bytes_s: float | None = None) -> float:
    """HBM bytes/s: the catalogue's datasheet figure for a known card, else what NVML derived."""
    from engineforge.gpus import find_gpu

    try:
        spec = find_gpu(gpu_name)
    except UserError:
        spec = None
    if spec is not None and spec.hbm_tb_s:
        return spec.hbm_tb_s * 1e12
    if nvml_bytes_s and math.isfinite(nvml_bytes_s):
        return nvml_bytes_s
    raise UserError(f"GPU {gpu_name!r}: memory bandwidth unknown; pass --gpu with a catalogue name (e.g. H100-SXM)")


def roofline_figures(
    model_dir: str | Path, gpu_name: str, figures: dict[str, float], concurrency: int, dtype: str = "auto",
    nvml_bytes_s: float | None = None, kv_cache_dtype: str = "auto", quantize: QuantizeSpec | None = None,
) -> dict[str, float]:
    """Roofline figures of a run: the context is the mean prompt plus half the output, per request."""
    completed = figures.get("completed") or 0
    if not completed:
        return {}
    context = (figures.get("prompt_tokens", 0) + figures.get("output_tokens", 0) / 2) / completed
    roofline = decode_roofline(read_model_shape(model_dir), gpu_bandwidth(gpu_name, nvml_bytes_s), concurrency, context,
                               dtype, kv_cache_dtype, quantize)
    # TPOT p50, else the median gap between chunks: the same decode step when text streams token by token.
    tpot = figures.get("tpot_ms_p50", math.nan)
    return roofline.figures(tpot if math.isfinite(tpot) else figures.get("itl_ms_p50", math.nan))
