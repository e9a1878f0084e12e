"""What TensorRT-LLM can run on which GPU, checked by `plan` (the GPU it plans for) and by `run`
(the worker's GPU) before any work; `validate`, which knows no GPU, flags a recipe that needs Blackwell.

NVFP4 (and MXFP4) compute needs Blackwell; Hopper runs FP8, FP8 KV cache and the W4A16/W4A8 AWQ formats
(NVIDIA/TensorRT-LLM docs/source/features/quantization.md, support matrix; ../shared/trtllm-facts.md).
"""

from __future__ import annotations

from engineforge.gpus import GpuSpec
from engineforge.recipe.schema import Recipe
from engineforge.runtime_traits import runtime_traits

BLACKWELL_ONLY = "nvfp4"


def blackwell_field(recipe: Recipe) -> str | None:
    """The field of a TensorRT-LLM recipe that makes it need a Blackwell GPU, if any."""
    spec = recipe.quantize
    if spec is None or not runtime_traits(recipe.runtime).tensorrt_llm:
        return None
    return "quantize.format" if spec.format == BLACKWELL_ONLY else "quantize.kv_cache" if spec.kv_cache == BLACKWELL_ONLY else None


def quantization_problem(recipe: Recipe, gpu: GpuSpec) -> tuple[str, str] | None:
    """(field, message) when a TensorRT-LLM recipe's quantization cannot run on `gpu`."""
    field = blackwell_field(recipe)
    if field is None or gpu.architecture in (None, "blackwell"):
        return None
    return field, (f"NVFP4 needs a Blackwell GPU (TensorRT-LLM's quantization support matrix); {gpu.name} is "
                   f"{gpu.architecture}: use fp8 (or int4_awq, w4a8_awq) on it, or plan for B200")
