"""What each runtime is, declared once by name, for the modules that decide by it but sit below
engineforge/runtimes/ (the recipe's checks, quantization support, sweep planning): they ask a trait,
never a runtime's name. Each Runtime answers the same traits (`Runtime.traits`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuntimeTraits:
    name: str
    # Runs TensorRT-LLM (a `trtllm` section, trtllm-bench, its GPU support matrix; AIConfigurator models it).
    tensorrt_llm: bool
    # TensorRT-LLM's PyTorch backend through the LLM API (options files, disaggregated serving).
    llm_api: bool
    # Builds a TensorRT engine with trtllm-build (TensorRT-LLM 1.2.x and before); a quantized model's rank
    # files come from ModelOpt's TensorRT-LLM export.
    engine_path: bool
    # Serves ModelOpt's fake-quantized checkpoint (not the unified export), so ModelOpt's own forward pass runs.
    serves_fake_quantized: bool
    cpu_capable: bool  # serves on the CPU when serve.device says so


TRAITS: dict[str, RuntimeTraits] = {traits.name: traits for traits in (
    RuntimeTraits("transformers", tensorrt_llm=False, llm_api=False, engine_path=False, serves_fake_quantized=True,
                  cpu_capable=True),
    RuntimeTraits("trtllm", tensorrt_llm=True, llm_api=True, engine_path=False, serves_fake_quantized=False,
                  cpu_capable=False),
    RuntimeTraits("trtllm-engine", tensorrt_llm=True, llm_api=False, engine_path=True, serves_fake_quantized=False,
                  cpu_capable=False),
)}
RUNTIMES = tuple(TRAITS)  # the recipe's `runtime` values


def runtime_traits(name: str) -> RuntimeTraits:
    return TRAITS[name]  # a recipe's runtime is one of RUNTIMES (validated), so a KeyError is a bug

