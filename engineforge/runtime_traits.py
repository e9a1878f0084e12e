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
    # The devices ("cpu", "cuda") on which a second server of the model may start while one serves: there a
    # repeated measurement starts the next repeat's server while the current one measures (measure/turns.py).
    # Not TensorRT-LLM on a GPU (a server takes kv_cache_free_gpu_memory_fraction of the free memory as it
    # starts), nor transformers on a GPU (two copies of the weights and caches need not fit).
    servers_share_devices: tuple[str, ...]

    def servers_share(self, device: str) -> bool:
        """Whether a second server may start on `device` while one serves there."""
        return device in self.servers_share_devices


TRAITS: dict[str, RuntimeTraits] = {traits.name: traits for traits in (
    RuntimeTraits("transformers", tensorrt_llm=False, llm_api=False, engine_path=False, serves_fake_quantized=True,
                  cpu_capable=True, servers_share_devices=("cpu",)),
    RuntimeTraits("trtllm", tensorrt_llm=True, llm_api=True, engine_path=False, serves_fake_quantized=False,
                  cpu_capable=False, servers_share_devices=()),
    RuntimeTraits("trtllm-engine", tensorrt_llm=True, llm_api=False, engine_path=True, serves_fake_quantized=False,
                  cpu_capable=False, servers_share_devices=()),
)}
RUNTIMES = tuple(TRAITS)  # the recipe's `runtime` values


def runtime_traits(name: str) -> RuntimeTraits:
    return TRAITS[name]  # a recipe's runtime is one of RUNTIMES (validated), so a KeyError is a bug

