"""What each runtime and GPU can serve, checked before any work (never a silent fallback).

Rules from TensorRT-LLM's support matrix, docs/source/features/quantization.md (NVIDIA/TensorRT-LLM,
as in ../shared/trtllm-facts.md): the PyTorch backend serves FP4 (NVFP4, Blackwell only, not Hopper),
FP8 per tensor / block / rowwise and FP8 KV cache (Hopper and later), W4A16 and W4A8 AWQ/GPTQ;
INT8 SmoothQuant is not listed for it. FP8 tensor cores start at Ada/Hopper (SM 8.9).
"""

from __future__ import annotations

from pathlib import Path

BLACKWELL = (10, 0)  # SM100: B200/GB200; NVFP4 compute
FP8_MIN = (8, 9)  # Ada (SM89) and Hopper (SM90): FP8 tensor cores
FP8_FORMATS = {"fp8", "w4a8_awq"}  # FP8 activations or weights


def refusal(runtime: str, format: str, kv_cache: str, serve_device: str,
            gpu: tuple[str, tuple[int, int]] | None) -> str | None:
    """Why `runtime` cannot serve this quantization here, or None. `gpu`: (name, compute capability)
    of the first visible GPU, None without one (then only the device-independent rules apply)."""
    if runtime == "trtllm-engine":
        return ("quantize: the trtllm-engine runtime's shard stage does not carry quantization scales into "
                "rank files; use runtime trtllm, which loads ModelOpt's unified checkpoint directly")
    if runtime == "trtllm":
        if format == "int8_sq":
            return ("quantize.format int8_sq: TensorRT-LLM's PyTorch backend does not serve INT8 SmoothQuant "
                    "(docs/source/features/quantization.md); pick fp8, int4_awq or w4a8_awq")
        if gpu is not None:
            name, capability = gpu
            if "nvfp4" in (format, kv_cache) and capability < BLACKWELL:
                field = "format" if format == "nvfp4" else "kv_cache"
                return (f"quantize.{field} nvfp4: NVFP4 needs a Blackwell GPU (SM 10.0+), this worker has {name} "
                        f"(SM {capability[0]}.{capability[1]}); pick fp8 or int4_awq, or run on Blackwell")
            if (format in FP8_FORMATS or kv_cache == "fp8") and capability < FP8_MIN:
                return (f"quantize: FP8 needs Ada or Hopper tensor cores (SM 8.9+), this worker has {name} "
                        f"(SM {capability[0]}.{capability[1]}); pick int4_awq")
    if runtime == "transformers" and "nvfp4" in (format, kv_cache) and serve_device != "cuda":
        return ("quantize: the reference runtime serves the fake-quantized model, and ModelOpt's NVFP4 forward "
                "pass needs CUDA; set serve.device cuda on a GPU worker, or pick fp8/int4_awq")
    return None


def first_gpu() -> tuple[str, tuple[int, int]] | None:
    """(name, compute capability) of GPU 0, or None on a machine without one (torch not imported then)."""
    if not any(Path("/dev").glob("nvidia[0-9]*")):
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_name(0), tuple(torch.cuda.get_device_capability(0))
