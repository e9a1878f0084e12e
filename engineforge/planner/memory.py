"""Memory per GPU for one parallel layout: weights, KV cache, activations, and the serving fraction.

All figures are for the most loaded rank (the first pipeline stage gets the extra layer when the
layers do not split evenly, as TensorRT-LLM's `torch.tensor_split` does).

- Weights: decoder layers on a stage / tp, with experts / ep per rank, each expert split moe_tp =
  tp / ep ways (TensorRT-LLM: moe_tp * moe_ep = tp); embedding, final norm and lm_head / (tp * pp).
  Decoder-layer weights use the quantized width when the checkpoint is FP8.
- KV cache: 2 (K and V) * ceil(layers / pp) * ceil(kv_heads / tp) * head_dim * max_batch_size *
  max_seq_len * KV bytes. When tp exceeds the KV heads each rank holds one duplicated head, hence ceil.
- Activations (an allowance, not a measurement): TensorRT-LLM's docs (reference/memory.md) say
  activation memory is about max input tokens * a per-network factor, one decoder block at a time.
  Max input tokens = min(build.max_num_tokens or TensorRT-LLM's default 8192, max_batch_size *
  max_input_len). The factor counts the tensors alive in one block per token: residual and normed
  hidden state, q/k/v and attention output, gate/up/product of the MLP for each expert a token
  reaches on the rank. Plus fp32 logits for max_batch_size rows, plus a fixed 1 GiB for the CUDA
  context and cuBLAS/NCCL workspaces.
- Serving fraction: TensorRT-LLM gives the KV cache `free_gpu_memory_fraction` (recipe
  `serve.kv_cache_free_gpu_memory_fraction`, 0.9 by default) of the memory left after weights and
  activations. Headroom is that KV budget minus the KV cache the limits need.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel

from engineforge.model.shape import ModelShape
from engineforge.recipe.parallel_layout import ParallelLayout

GIB = 2**30
RUNTIME_RESERVE_BYTES = 1 * GIB
LOGITS_BYTES = 4  # fp32 logits
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "fp8": 1, "int8": 1}
# TensorRT-LLM's default when build.max_num_tokens is unset (BuildConfig and the PyTorch backend's
# KV cache managers default to 8192).
DEFAULT_MAX_NUM_TOKENS = 8192
QUANTIZED_WEIGHT_BYTES = {"fp8": 1}  # quantization_config.quant_method -> bytes per decoder weight
# A recipe's quantize.format -> bytes per decoder weight, scales included: ModelOpt's INT4_AWQ_CFG and
# W4A8_AWQ_BETA_CFG quantize 4-bit weights in blocks of 128 with a 16-bit scale each, NVFP4_DEFAULT_CFG
# 4-bit in blocks of 16 with an FP8 scale each; FP8 and INT8-SmoothQuant scales are per tensor or channel.
QUANTIZE_WEIGHT_BYTES = {"fp8": 1, "int8_sq": 1, "int4_awq": 0.5 + 2 / 128, "w4a8_awq": 0.5 + 2 / 128,
                         "nvfp4": 0.5 + 1 / 16}
QUANTIZE_KV_BYTES = {"fp8": 1, "nvfp4": 0.5 + 1 / 16}  # quantize.kv_cache -> bytes per cached value


class ServingLimits(BaseModel):
    max_batch_size: int
    max_seq_len: int
    max_input_len: int
    max_num_tokens: int | None = None
    kv_cache_fraction: float = 0.9

    @classmethod
    def from_recipe(cls, recipe) -> "ServingLimits":
        build = recipe.build
        return cls(
            max_batch_size=build.max_batch_size,
            max_seq_len=build.max_seq_len,
            max_input_len=build.max_input_len,
            max_num_tokens=build.max_num_tokens,
            kv_cache_fraction=recipe.serve.kv_cache_free_gpu_memory_fraction,
        )

    @property
    def forward_tokens(self) -> int:
        """Tokens one forward pass can hold: the scheduler packs at most max_num_tokens, and never more
        than max_batch_size prompts of max_input_len."""
        return min(self.max_num_tokens or DEFAULT_MAX_NUM_TOKENS, self.max_batch_size * self.max_input_len)


class Precision(BaseModel):
    dtype: str  # the model's compute dtype
    dtype_bytes: int
    weight_bytes: int | float  # decoder-layer weights (smaller when the checkpoint or the recipe quantizes)
    kv_dtype: str
    kv_bytes: int | float
    notes: list[str] = []

    @classmethod
    def resolve(cls, shape: ModelShape, model_dtype: str = "auto", kv_cache_dtype: str = "auto",
                quantize: Any = None) -> "Precision":
        """dtype "auto" is the config's torch_dtype (bfloat16 when it has none); KV "auto" follows the model.

        `quantize` is the recipe's quantize section (format, kv_cache): the quantize stage's output is
        what is served, so its widths replace the source's."""
        notes = []
        dtype = model_dtype if model_dtype != "auto" else (shape.torch_dtype or "bfloat16")
        if dtype not in DTYPE_BYTES:
            notes.append(f"config dtype {dtype!r} is not sized here; counted as bfloat16")
            dtype = "bfloat16"
        weight_bytes = DTYPE_BYTES[dtype]
        if shape.quant_method in QUANTIZED_WEIGHT_BYTES:
            weight_bytes = QUANTIZED_WEIGHT_BYTES[shape.quant_method]
        elif shape.quant_method:
            notes.append(f"quantization {shape.quant_method!r} is not modelled: weights counted at {dtype} (an overestimate)")
        kv_dtype = dtype if kv_cache_dtype == "auto" else kv_cache_dtype
        kv_bytes = DTYPE_BYTES[kv_dtype]
        if quantize is not None:
            weight_bytes = QUANTIZE_WEIGHT_BYTES[quantize.format]
            notes.append(f"weights quantized to {quantize.format} ({weight_bytes:.3g} bytes per decoder weight)")
            if quantize.kv_cache != "none":
                kv_dtype, kv_bytes = quantize.kv_cache, QUANTIZE_KV_BYTES[quantize.kv_cache]
        return cls(
            dtype=dtype, dtype_bytes=DTYPE_BYTES[dtype], weight_bytes=weight_bytes,
            kv_dtype=kv_dtype, kv_bytes=kv_bytes, notes=notes,
        )


def stage_layers(shape: ModelShape, pp: int) -> int:
    return math.ceil(shape.num_layers / pp)


def weight_bytes(shape: ModelShape, layout: ParallelLayout, precision: Precision, experts_read: int | None = None) -> float:
    """Weight bytes on the most loaded rank; `experts_read` counts only that many experts per layer
    (what one decode step touches) instead of all the rank holds."""
    experts_held = math.ceil(shape.num_experts / layout.ep) if shape.is_moe else 0
    experts = experts_held if experts_read is None else min(experts_read, experts_held)
    per_layer = (
        shape.layer_dense_params() / layout.tp
        + experts * shape.expert_params() / layout.moe_tp
    ) * precision.weight_bytes
    outer = shape.outer_params() * precision.dtype_bytes / (layout.tp * layout.pp)
    return stage_layers(shape, layout.pp) * per_layer + outer


def kv_cache_bytes(shape: ModelShape, layout: ParallelLayout, limits: ServingLimits, precision: Precision) -> int:
    kv_heads_per_rank = math.ceil(shape.num_kv_heads / layout.tp)
    return (
        2 * stage_layers(shape, layout.pp) * kv_heads_per_rank * shape.head_dim
        * limits.max_batch_size * limits.max_seq_len * precision.kv_bytes
    )


def activation_bytes(shape: ModelShape, layout: ParallelLayout, limits: ServingLimits, precision: Precision) -> float:
    q = math.ceil(shape.num_heads / layout.tp) * shape.head_dim
    kv = math.ceil(shape.num_kv_heads / layout.tp) * shape.head_dim
    if shape.is_moe:
        # Worst case every token routes into this rank: once per expert it holds, top-k at most.
        routed = min(shape.experts_per_token, math.ceil(shape.num_experts / layout.ep))
        mlp = routed * 3 * shape.intermediate_size / layout.moe_tp
    else:
        mlp = 3 * shape.intermediate_size / layout.tp
    per_token = 2 * shape.hidden_size + (q + 2 * kv + q) + mlp
    logits = limits.max_batch_size * math.ceil(shape.vocab_size / layout.tp) * LOGITS_BYTES
    return limits.forward_tokens * per_token * precision.dtype_bytes + logits + RUNTIME_RESERVE_BYTES


class MemoryEstimate(BaseModel):
    """Bytes on the most loaded GPU of one layout, and what is left for the KV cache."""

    weights: float
    kv_cache: int
    activations: float
    capacity: int
    kv_fraction: float
    kv_per_sequence: int  # KV bytes one max_seq_len sequence takes on this rank

    @property
    def total(self) -> float:
        return self.weights + self.kv_cache + self.activations

    @property
    def kv_budget(self) -> float:
        return max(0.0, self.capacity - self.weights - self.activations) * self.kv_fraction

    @property
    def headroom(self) -> float:
        return self.kv_budget - self.kv_cache

    @property
    def needed(self) -> float:
        """GPU memory this layout needs so that the KV fraction of what is free holds the KV cache."""
        return self.weights + self.activations + self.kv_cache / self.kv_fraction

    @property
    def shortfall(self) -> float:
        return max(0.0, self.needed - self.capacity)

    @property
    def fits(self) -> bool:
        return self.shortfall == 0

    @property
    def kv_sequences(self) -> int:
        """Sequences of max_seq_len the KV budget holds (what in-flight batching can keep going)."""
        return int(self.kv_budget // self.kv_per_sequence) if self.kv_per_sequence else 0


def estimate(shape: ModelShape, layout: ParallelLayout, limits: ServingLimits, precision: Precision, capacity: int) -> MemoryEstimate:
    one_sequence = limits.model_copy(update={"max_batch_size": 1})
    return MemoryEstimate(
        weights=weight_bytes(shape, layout, precision),
        kv_cache=kv_cache_bytes(shape, layout, limits, precision),
        activations=activation_bytes(shape, layout, limits, precision),
        capacity=capacity,
        kv_fraction=limits.kv_cache_fraction,
        kv_per_sequence=kv_cache_bytes(shape, layout, one_sequence, precision),
    )
