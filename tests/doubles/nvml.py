"""A fake `pynvml` module: two H100-like cards with fixed readings (no GPU on our machines).

Install it with `monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())`.
"""

from __future__ import annotations

import types


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
