"""GPU telemetry (with a fake NVML module: no GPU on this machine)."""

from __future__ import annotations

import sys
import time

import pytest

from engineforge.measure.telemetry import GpuSampler
from tests.doubles.nvml import fake_pynvml


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
