"""Lower bounds on latency from the GPU catalogue's bandwidth and throughput (roofline floors).

They ignore communication and kernel efficiency, so real figures are higher; they rank layouts for
the latency objective and tell users the order of magnitude, nothing more.

- Decode floor, one request: each step reads the weights one token touches (top-k experts for MoE)
  once; a request passes the pp stages one after another, so the floor is pp * bytes per rank /
  HBM bandwidth.
- Prefill floor, one max_input_len prompt: 2 * active parameters * prompt tokens over tp GPUs
  working together (stages again in sequence), at dense BF16 (FP8 when the weights are FP8).
"""

from __future__ import annotations

from engineforge.gpus import GpuSpec
from engineforge.model.shape import ModelShape
from engineforge.planner.memory import Precision, ServingLimits, weight_bytes
from engineforge.recipe.parallel_layout import ParallelLayout


def decode_bytes(shape: ModelShape, layout: ParallelLayout, precision: Precision) -> float:
    """Bytes read from HBM, summed over the pipeline stages, for one decode step of one request."""
    experts = shape.experts_per_token if shape.is_moe else None
    return layout.pp * weight_bytes(shape, layout, precision, experts_read=experts)


def decode_floor_ms(shape: ModelShape, layout: ParallelLayout, precision: Precision, gpu: GpuSpec) -> float | None:
    if not gpu.hbm_tb_s:
        return None
    return decode_bytes(shape, layout, precision) / (gpu.hbm_tb_s * 1e12) * 1e3


def prefill_floor_ms(
    shape: ModelShape, layout: ParallelLayout, precision: Precision, limits: ServingLimits, gpu: GpuSpec
) -> float | None:
    tflops = gpu.fp8_tflops if precision.weight_bytes == 1 else gpu.bf16_tflops if precision.dtype_bytes == 2 else None
    if not tflops:
        return None
    flops = 2 * shape.active_params() * limits.max_input_len
    return flops / (layout.tp * tflops * 1e12) * 1e3
