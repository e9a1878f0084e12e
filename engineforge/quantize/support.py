"""What each runtime and GPU can serve, checked before any work (never a silent fallback).

Rules from TensorRT-LLM's support matrix, docs/source/features/quantization.md (NVIDIA/TensorRT-LLM,
as in ../shared/trtllm-facts.md): the PyTorch backend serves FP4 (NVFP4, Blackwell only, not Hopper),
FP8 per tensor / block / rowwise and FP8 KV cache (Hopper and later), W4A16 and W4A8 AWQ/GPTQ;
INT8 SmoothQuant is not listed for it. The TensorRT engine path (runtime trtllm-engine) serves W8A8
SmoothQuant, FP8 and W4A16 AWQ for LLaMA (docs/source/reference/precision.md, "Support matrix").
FP8 tensor cores start at Ada/Hopper (SM 8.9).
"""

from __future__ import annotations

from engineforge.errors import UserError
from engineforge.gpus import first_gpu, serving_device
from engineforge.recipe.schema import Recipe
from engineforge.runtime_traits import runtime_traits

BLACKWELL = (10, 0)  # SM100: B200/GB200; NVFP4 compute
FP8_MIN = (8, 9)  # Ada (SM89) and Hopper (SM90): FP8 tensor cores
FP8_FORMATS = {"fp8", "w4a8_awq"}  # FP8 activations or weights


def refusal(runtime: str, format: str, kv_cache: str, serve_device: str,
            gpu: tuple[str, tuple[int, int]] | None, expert: int = 1) -> str | None:
    """Why `runtime` cannot serve this quantization here, or None. `gpu`: (name, compute capability)
    of the first visible GPU, None without one (then only the device-independent rules apply);
    `expert`: the resolved parallel.expert."""
    traits = runtime_traits(runtime)
    if traits.engine_path and expert > 1:
        # ModelOpt's export_tensorrt_llm_checkpoint has no expert-parallel size, and TensorRT-LLM's own
        # quantization refuses one (tensorrt_llm/models/modeling_utils.py PretrainedModel.quantize:
        # "Quantization for expert parallelism is not supported").
        return (f"quantize with parallel.expert {expert}: the trtllm-engine rank files of a quantized model are "
                "written by ModelOpt's TensorRT-LLM export, which has no expert parallelism; set parallel.expert 1 "
                "or use runtime trtllm")
    if traits.llm_api and format == "int8_sq":
        return ("quantize.format int8_sq: TensorRT-LLM's PyTorch backend does not serve INT8 SmoothQuant "
                "(docs/source/features/quantization.md); pick fp8, int4_awq or w4a8_awq, or runtime trtllm-engine")
    if traits.tensorrt_llm and gpu is not None:  # TensorRT-LLM's kernels on the GPU
        name, capability = gpu
        if "nvfp4" in (format, kv_cache) and capability < BLACKWELL:
            field = "format" if format == "nvfp4" else "kv_cache"
            return (f"quantize.{field} nvfp4: NVFP4 needs a Blackwell GPU (SM 10.0+), this worker has {name} "
                    f"(SM {capability[0]}.{capability[1]}); pick fp8 or int4_awq, or run on Blackwell")
        if (format in FP8_FORMATS or kv_cache == "fp8") and capability < FP8_MIN:
            return (f"quantize: FP8 needs Ada or Hopper tensor cores (SM 8.9+), this worker has {name} "
                    f"(SM {capability[0]}.{capability[1]}); pick int4_awq")
    if traits.serves_fake_quantized and "nvfp4" in (format, kv_cache) and serve_device != "cuda":
        return ("quantize: the reference runtime serves the fake-quantized model, and ModelOpt's NVFP4 forward "
                "pass needs CUDA; set serve.device cuda on a GPU worker, or pick fp8/int4_awq")
    return None


def check_servable(recipe: Recipe) -> None:
    """Refuse, before any work, a quantization this runtime, layout or GPU cannot serve (the layout resolved)."""
    spec = recipe.quantize
    if spec is None:
        return
    expert = recipe.parallel.expert if isinstance(recipe.parallel.expert, int) else 1
    reason = refusal(recipe.runtime, spec.format, spec.kv_cache, serving_device(recipe.serve.device), first_gpu(), expert)
    if reason:
        raise UserError(reason)

