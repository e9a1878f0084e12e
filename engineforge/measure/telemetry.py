"""GPU telemetry during a run: NVML sampled on a background thread (utilisation, memory, power).

Needs the `pynvml` module (package nvidia-ml-py, extra `gpu`) and a driver; without either the
sampler is simply unavailable and reports no figures. Figures cover every visible GPU:
utilisation and power are averaged over GPUs and samples, memory is the peak of any GPU.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class GpuSample:
    t: float
    util_pct: list[float]
    mem_used_bytes: list[float]
    power_w: list[float]


@dataclass
class GpuSampler:
    interval_s: float = 0.1
    samples: list[GpuSample] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    memory_bandwidth_bytes_s: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._nvml = None
        self._handles: list = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def available(self) -> bool:
        return bool(self._handles)

    def __enter__(self) -> "GpuSampler":
        self._open()
        if self.available:
            self._thread = threading.Thread(target=self._run, name="engineforge-nvml", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._sample()  # one at the end, so short runs have a figure
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass

    def _open(self) -> None:
        try:
            import pynvml
        except ImportError:
            return
        try:
            pynvml.nvmlInit()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        except Exception:  # NVMLError or a missing driver library: no GPU telemetry here
            self._handles = []
            return
        self._nvml = pynvml
        for handle in self._handles:
            name = pynvml.nvmlDeviceGetName(handle)
            self.names.append(name.decode() if isinstance(name, bytes) else str(name))
            self.memory_bandwidth_bytes_s.append(_bandwidth(pynvml, handle))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def _sample(self) -> None:
        nvml = self._nvml
        try:
            self.samples.append(
                GpuSample(
                    t=time.perf_counter(),
                    util_pct=[float(nvml.nvmlDeviceGetUtilizationRates(h).gpu) for h in self._handles],
                    mem_used_bytes=[float(nvml.nvmlDeviceGetMemoryInfo(h).used) for h in self._handles],
                    power_w=[nvml.nvmlDeviceGetPowerUsage(h) / 1000.0 for h in self._handles],
                )
            )
        except Exception:
            pass  # a failed read skips one sample, never the run

    def figures(self) -> dict[str, float]:
        if not self.samples:
            return {}
        util = np.array([s.util_pct for s in self.samples])
        power = np.array([s.power_w for s in self.samples])
        memory = np.array([s.mem_used_bytes for s in self.samples])
        return {
            "gpu_count": float(len(self._handles)),
            "gpu_util_pct_mean": float(util.mean()),
            "gpu_util_pct_max": float(util.max()),
            "gpu_mem_used_gib_max": float(memory.max() / 2**30),
            "gpu_power_w_mean": float(power.mean()),
            "gpu_power_w_max": float(power.max()),
            "gpu_samples": float(len(self.samples)),
        }


def _bandwidth(nvml, handle) -> float:
    """Peak memory bandwidth from NVML: max memory clock x bus width x 2 (double data rate)."""
    try:
        clock_hz = nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_MEM) * 1e6
        bus_bytes = nvml.nvmlDeviceGetMemoryBusWidth(handle) / 8
        return 2 * clock_hz * bus_bytes
    except Exception:
        return float("nan")
