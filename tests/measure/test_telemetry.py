"""GPU telemetry (with a fake NVML module: no GPU on this machine) and the decode roofline."""

from __future__ import annotations

import math
import sys
import time
import types

import pytest

from engineforge.errors import UserError
from engineforge.measure.roofline import decode_roofline, gpu_bandwidth
from engineforge.measure.telemetry import GpuSampler
from engineforge.model_shape import ModelShape


def fake_pynvml(gpus: int = 2) -> types.ModuleType:
    nvml = types.ModuleType("pynvml")
    nvml.NVML_CLOCK_MEM = 2
    nvml.nvmlInit = lambda: None
    nvml.nvmlShutdown = lambda: None
    nvml.nvmlDeviceGetCount = lambda: gpus
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i
    nvml.nvmlDeviceGetName = lambda h: b"NVIDIA H100 80GB HBM3"
    nvml.nvmlDeviceGetMaxClockInfo = lambda h, kind: 2619  # MHz
    nvml.nvmlDeviceGetMemoryBusWidth = lambda h: 5120  # bits
    nvml.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=40 + 20 * h)
    nvml.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=(h + 1) * 2**30)
    nvml.nvmlDeviceGetPowerUsage = lambda h: 100_000 + 100_000 * h  # milliwatts
    return nvml


def test_sampler_with_fake_nvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())
    with GpuSampler(interval_s=0.01) as sampler:
        time.sleep(0.05)
    figures = sampler.figures()
    assert sampler.names == ["NVIDIA H100 80GB HBM3"] * 2
    assert sampler.memory_bandwidth_bytes_s[0] == pytest.approx(3.352e12, rel=1e-3)
    assert figures["gpu_count"] == 2 and figures["gpu_samples"] >= 2
    assert figures["gpu_util_pct_mean"] == 50 and figures["gpu_util_pct_max"] == 60
    assert figures["gpu_mem_used_gib_max"] == 2 and figures["gpu_power_w_mean"] == 150


def test_sampler_without_nvml_reports_nothing(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    with GpuSampler() as sampler:
        pass
    assert not sampler.available and sampler.figures() == {}
    broken = fake_pynvml()
    broken.nvmlInit = lambda: (_ for _ in ()).throw(OSError("libnvidia-ml.so.1: cannot open"))
    monkeypatch.setitem(sys.modules, "pynvml", broken)
    with GpuSampler() as sampler:
        pass
    assert not sampler.available and sampler.figures() == {}


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
