"""GPU catalogue (vendor datasheet figures) and detection: NVML for the card and its memory, torch for its
name, count and compute capability.

Throughput figures are *dense* tensor-core peaks: NVIDIA datasheets print the 2:4-sparsity figure
(marked `*`) for Hopper and later, so those are halved here. `memory_bytes` is the capacity the
planner works with: the total NVML reports on that card (`nvidia-smi` shows it as `NNNNNMiB`),
which is a little less than the nominal datasheet figure once the driver and ECC take their share.
When a GPU is detected, its own NVML total replaces the catalogue value.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from engineforge.errors import UserError

MIB = 2**20


class GpuSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    memory_bytes: int
    memory_gb: float | None = None  # nominal, as the datasheet prints it
    hbm_tb_s: float | None = None  # memory bandwidth, TB/s
    bf16_tflops: float | None = None  # dense
    fp8_tflops: float | None = None  # dense; None where the card has no FP8 tensor cores
    architecture: str | None = None  # hopper, blackwell, ...: what a quantization format's kernels need
    source: str = ""
    nvml_names: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    @property
    def memory_gib(self) -> float:
        return self.memory_bytes / 2**30


H100_DATASHEET = "https://www.nvidia.com/en-us/data-center/h100/ (H100 Tensor Core GPU datasheet)"

CATALOGUE: tuple[GpuSpec, ...] = (
    GpuSpec(
        name="H100-SXM", architecture="hopper", memory_gb=80, memory_bytes=81559 * MIB, hbm_tb_s=3.35,
        bf16_tflops=989.5, fp8_tflops=1979, source=H100_DATASHEET + ", H100 SXM column: BF16 1,979* / FP8 3,958* TFLOPS",
        nvml_names=("NVIDIA H100 80GB HBM3",), aliases=("H100", "H100-SXM5", "H100-80GB"),
    ),
    GpuSpec(
        name="H100-PCIe", architecture="hopper", memory_gb=80, memory_bytes=81559 * MIB, hbm_tb_s=2.0,
        bf16_tflops=756.5, fp8_tflops=1513, source=H100_DATASHEET + ", H100 PCIe column: BF16 1,513* / FP8 3,026* TFLOPS",
        nvml_names=("NVIDIA H100 PCIe",),
    ),
    GpuSpec(
        name="H200", architecture="hopper", memory_gb=141, memory_bytes=143771 * MIB, hbm_tb_s=4.8,
        bf16_tflops=989.5, fp8_tflops=1979,
        source="https://www.nvidia.com/en-us/data-center/h200/ (H200 SXM column: BF16 1,979* / FP8 3,958* TFLOPS)",
        nvml_names=("NVIDIA H200",), aliases=("H200-SXM",),
    ),
    GpuSpec(
        name="A100-40GB", architecture="ampere", memory_gb=40, memory_bytes=40960 * MIB, hbm_tb_s=1.555, bf16_tflops=312,
        source="https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf (BF16 312 dense, 1,555 GB/s)",
        nvml_names=("NVIDIA A100-SXM4-40GB", "NVIDIA A100-PCIE-40GB"), aliases=("A100-40G",),
    ),
    GpuSpec(
        # The PCIe 80GB card has 1,935 GB/s; the SXM figure is used for both.
        name="A100-80GB", architecture="ampere", memory_gb=80, memory_bytes=81920 * MIB, hbm_tb_s=2.039, bf16_tflops=312,
        source="https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf (BF16 312 dense, SXM 2,039 GB/s)",
        nvml_names=("NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB PCIe"), aliases=("A100", "A100-80G"),
    ),
    GpuSpec(
        name="L40S", architecture="ada", memory_gb=48, memory_bytes=46068 * MIB, hbm_tb_s=0.864, bf16_tflops=362.05, fp8_tflops=733,
        source="https://www.nvidia.com/en-us/data-center/l40s/ (L40S datasheet: BF16 362.05 / FP8 733 dense, GDDR6 864 GB/s)",
        nvml_names=("NVIDIA L40S",),
    ),
    GpuSpec(
        name="B200", architecture="blackwell", memory_gb=180, memory_bytes=183359 * MIB, hbm_tb_s=8.0, bf16_tflops=2250, fp8_tflops=4500,
        source="https://www.nvidia.com/en-us/data-center/dgx-b200/ (DGX B200: 8 GPUs, 1,440 GB, 64 TB/s, FP8 72 PFLOPS*; per GPU = /8, dense = /2)",
        nvml_names=("NVIDIA B200",), aliases=("HGX-B200",),
    ),
)

DEFAULT_GPU = "H100-SXM"


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_BY_KEY = {_key(alias): spec for spec in CATALOGUE for alias in (spec.name, *spec.aliases, *spec.nvml_names)}


def known_names() -> list[str]:
    return [spec.name for spec in CATALOGUE]


def known_gpu(name: str) -> GpuSpec | None:
    """The catalogue entry for a name, or None for a card the catalogue lacks."""
    return _BY_KEY.get(_key(name))


def find_gpu(name: str) -> GpuSpec:
    """The catalogue entry for a name as users write it (`h100`, `H100-SXM`, `NVIDIA H100 80GB HBM3`)."""
    spec = _BY_KEY.get(_key(name))
    if spec is None:
        raise UserError(f"--gpu {name}: unknown GPU; known: {', '.join(known_names())}")
    return spec


class DetectedGpus(BaseModel):
    spec: GpuSpec
    count: int


def detect_gpus() -> DetectedGpus | None:
    """The local GPUs through NVML (package nvidia-ml-py), or None where there is no NVML or no GPU."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # pynvml.NVMLError and driver-library load failures alike mean "no GPU here"
        return None
    try:
        count = pynvml.nvmlDeviceGetCount()
        if count < 1:
            return None
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        name = pynvml.nvmlDeviceGetName(handle)
        name = name.decode() if isinstance(name, bytes) else str(name)
        total = int(pynvml.nvmlDeviceGetMemoryInfo(handle).total)
    except Exception:
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass
    known = _BY_KEY.get(_key(name))
    # The card's own total is the truth (MIG slices, other SKUs); datasheet figures come from the catalogue.
    spec = known.model_copy(update={"memory_bytes": total}) if known else GpuSpec(name=name, memory_bytes=total, source="NVML")
    return DetectedGpus(spec=spec, count=count)


@lru_cache(maxsize=1)
def gpu_info() -> dict[str, str | int | None]:
    """GPU name, count, CUDA and driver versions; all None on a machine without a GPU."""
    info: dict[str, str | int | None] = {"gpu_name": None, "gpu_count": 0, "cuda": None, "driver": None}
    if not any(Path("/dev").glob("nvidia[0-9]*")):
        return info  # no NVIDIA device: skip importing torch (seconds on every cached run)
    try:
        import torch

        info["cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            info["gpu_count"] = torch.cuda.device_count()
            info["gpu_name"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    try:
        import pynvml

        pynvml.nvmlInit()
        info["driver"] = pynvml.nvmlSystemGetDriverVersion()
    except Exception:  # no NVML library or no driver: nothing to record
        pass
    return info


def first_gpu() -> tuple[str, tuple[int, int]] | None:
    """(name, compute capability) of GPU 0, what a quantization's kernels need; None on a machine without
    one. The name is `gpu_info`'s (the one detection); torch adds only the capability."""
    name = gpu_info()["gpu_name"]
    if name is None:
        return None
    import torch

    return str(name), tuple(torch.cuda.get_device_capability(0))


def visible_devices() -> list[str] | None:
    """The entries of CUDA_VISIBLE_DEVICES (None when unset: every device is visible)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return [d.strip() for d in visible.split(",") if d.strip()] if visible else None


def serving_device(requested: str) -> str:
    """The device a server uses: the recipe's `serve.device`, or for "auto" CUDA when a GPU is visible."""
    if requested != "auto":
        return requested
    return "cuda" if gpu_info()["gpu_count"] else "cpu"
