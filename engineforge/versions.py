"""Versions of the tools a run used, for cache keys and the lock file."""

from __future__ import annotations

import importlib.metadata
from functools import lru_cache
from pathlib import Path


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def tensorrt_llm_version() -> str | None:
    # find_spec, not import: importing tensorrt_llm needs a CUDA driver (one probe, with its test switch).
    from engineforge.trtllm_commands.availability import installed_version

    return installed_version()


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


def tool_versions() -> dict[str, str | int | None]:
    import engineforge

    versions: dict[str, str | int | None] = {
        "engineforge": engineforge.__version__,
        "prefect": package_version("prefect"),
        "mlflow": package_version("mlflow"),
        "torch": package_version("torch"),
        "transformers": package_version("transformers"),
        "tensorrt_llm": tensorrt_llm_version(),
    }
    versions.update(gpu_info())
    return versions
