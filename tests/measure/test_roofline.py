"""The decode roofline: hand-computed bytes per step, and where the HBM bandwidth comes from."""

from __future__ import annotations

import math

import pytest

from engineforge.errors import UserError
from engineforge.measure.roofline import decode_roofline, gpu_bandwidth
from engineforge.model.shape import ModelShape

SHAPE = ModelShape(name="m", hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=16,
                   intermediate_size=128, vocab_size=512, torch_dtype="bfloat16")


def test_decode_roofline_hand_computed():
    # per layer: q,o 64x64 + k,v 64x32 + mlp 3 x 64x128 + 2 norms of 64 = 8192 + 4096 + 24576 + 128 = 36992
    # outer: embed + lm_head 2 x 512x64 + final norm 64 = 65600; all bf16 (2 bytes)
    weights = (2 * 36992 + 65600) * 2
    kv_per_token = 2 * 2 * 2 * 16 * 2  # k and v, layers, kv heads, head dim, bytes
    roofline = decode_roofline(SHAPE, hbm_bytes_s=1e9, concurrency=4, context_tokens=100)
    assert roofline.weight_bytes == weights and roofline.kv_bytes_per_token == kv_per_token
    floor_ms = (weights + 4 * 100 * kv_per_token) / 1e9 * 1e3
    assert roofline.tpot_floor_ms == pytest.approx(floor_ms)
    assert roofline.output_tokens_per_s == pytest.approx(4 * 1e3 / floor_ms)
    figures = roofline.figures(tpot_ms_p50=2 * floor_ms)
    assert figures["roofline_fraction"] == pytest.approx(0.5)
    assert math.isnan(roofline.figures(math.nan)["roofline_fraction"])


def test_gpu_bandwidth_catalogue_then_nvml():
    assert gpu_bandwidth("NVIDIA H100 80GB HBM3") == 3.35e12
    assert gpu_bandwidth("Some Future GPU", nvml_bytes_s=5e12) == 5e12
    with pytest.raises(UserError, match="--gpu"):
        gpu_bandwidth("Some Future GPU")


def test_quantized_recipe_roofline_reads_the_quantized_widths(tiny_model_dir):
    # The tiny model is SHAPE; INT4-AWQ decoder weights: half a byte plus a 2-byte scale per block of 128
    # (engineforge.planner.memory QUANTIZE_WEIGHT_BYTES); embedding and lm_head stay bf16; FP8 KV: 1 byte.
    from engineforge.measure.roofline import roofline_figures
    from engineforge.recipe.schema import QuantizeSpec

    weights = 2 * 36992 * (0.5 + 2 / 128) + 65600 * 2
    kv_per_token = 2 * 2 * 2 * 16 * 1
    run = {"completed": 1, "prompt_tokens": 100, "output_tokens": 0, "tpot_ms_p50": 1.0}
    spec = QuantizeSpec(format="int4_awq", kv_cache="fp8")
    quantized = roofline_figures(tiny_model_dir, "NVIDIA H100 80GB HBM3", run, 4, "bfloat16", quantize=spec)
    assert quantized["roofline_tpot_ms"] == pytest.approx((weights + 4 * 100 * kv_per_token) / 3.35e12 * 1e3)
    plain = roofline_figures(tiny_model_dir, "NVIDIA H100 80GB HBM3", run, 4, "bfloat16")
    assert plain["roofline_tpot_ms"] == pytest.approx(decode_roofline(SHAPE, 3.35e12, 4, 100).tpot_floor_ms)
