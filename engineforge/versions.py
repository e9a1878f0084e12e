"""Versions of the tools a run used, for cache keys and the lock file."""

from __future__ import annotations

import importlib.metadata
import importlib.util

from engineforge.gpus import gpu_info
from engineforge.settings import settings, variable


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def installed_packages() -> dict[str, str]:
    """name -> version of every distribution this interpreter sees, sorted by name."""
    from packaging.utils import canonicalize_name

    found = {canonicalize_name(dist.metadata["Name"]): dist.version for dist in importlib.metadata.distributions()
             if dist.metadata["Name"]}
    return dict(sorted(found.items()))


TRTLLM_TEST_SWITCH = variable("TEST_TRTLLM_VERSION")  # see engineforge/runtimes/trtllm/availability.py
TRTLLM_PACKAGE = "tensorrt_llm"


def tensorrt_llm_present() -> bool:
    return bool(settings().TEST_TRTLLM_VERSION) or importlib.util.find_spec(TRTLLM_PACKAGE) is not None


def tensorrt_llm_version() -> str | None:
    """The TensorRT-LLM version of this worker, or None without TensorRT-LLM.

    Probed with find_spec, not import: importing tensorrt_llm needs a CUDA driver."""
    if settings().TEST_TRTLLM_VERSION:
        return settings().TEST_TRTLLM_VERSION
    if importlib.util.find_spec(TRTLLM_PACKAGE) is None:
        return None
    return package_version("tensorrt_llm") or package_version("tensorrt-llm")


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
