"""The recipe's `trtllm:` section: the TensorRT-LLM version a recipe targets, and the LLM API options
(`trtllm-serve --config FILE`) beyond the limits the build section already sets.

`llm_api` uses TensorRT-LLM's own names (tensorrt_llm/llmapi/llm_args.py, TorchLlmArgs), so a key
reads as it does in NVIDIA's docs and sweeps by the same dotted path (`trtllm.llm_api.enable_chunked_prefill`).
A typed core covers what the planner and the sweep reason about; any other key passes through to
the file and is checked, before any work, against the target version's definitions
(engineforge.trtllm.definitions). Keys engineforge sets from another recipe field are refused here,
naming that field: one place per setting.

The versions a recipe may target, and what each one changes, are declared here too (the section's
`version` admits exactly these). Sources (NVIDIA/TensorRT-LLM; ../shared/trtllm-facts.md, "After 1.2.1"):
- 1.2.1 (April 2026) is the latest stable release and the last with the TensorRT engine path
  (`trtllm-build`, `convert_checkpoint.py`, `--backend tensorrt`, trtllm-bench `--engine_dir`).
- The 1.3.0 release candidates have none of it: docs/source/legacy/tensorrt-backend-removal.md
  (PRs 15763, 15918, 16369); trtllm-bench lost `engine_dir` in PR 18850.
- `trtllm-serve --config FILE` is the preferred name of `--extra_llm_api_options` (alias since PR 9104).
  1.2.1 keeps the name its recipes have always used, so the 1.2.x workflow is unchanged.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

RELEASE_IMAGES = "nvcr.io/nvidia/tensorrt-llm/release"


class TrtllmVersion(NamedTuple):
    version: str
    engine_path: bool  # trtllm-build, --backend tensorrt and trtllm-bench --engine_dir exist
    serve_options_flag: str  # how trtllm-serve is handed the LLM API options file
    definitions: str  # engineforge/trtllm/definitions/<this>.json: what the options are checked against
    # definitions/<this>.json: what disagg_config.yaml is checked against (None: no NVIDIA definition read for it)
    disagg_definitions: str | None = None

    @property
    def release_image(self) -> str:
        return f"{RELEASE_IMAGES}:{self.version}"


VERSIONS: dict[str, TrtllmVersion] = {v.version: v for v in (
    TrtllmVersion("1.2.1", engine_path=True, serve_options_flag="--extra_llm_api_options", definitions="1.2.1"),
    TrtllmVersion("1.3.0rc30", engine_path=False, serve_options_flag="--config", definitions="1.3.0rc30",
                  disagg_definitions="disagg-1.4.0rc0"),
)}
DEFAULT_VERSION = "1.2.1"
ACCEPTED = tuple(VERSIONS)


def trtllm_version(version: str) -> TrtllmVersion:
    return VERSIONS[version]  # the recipe's Literal admits only these


MAX_BATCH = 1 << 16


class _Options(BaseModel):
    # Typed where engineforge knows the field, open for the rest (checked against the version's definitions).
    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False, validate_default=True)


class CudaGraphOptions(_Options):
    """`cuda_graph_config` (CudaGraphConfig): which decode batch sizes are captured as CUDA graphs."""

    batch_sizes: list[Annotated[int, Field(ge=1, le=MAX_BATCH)]] | None = Field(
        None, description="Batch sizes to capture; default TensorRT-LLM's list up to max_batch_size.")
    max_batch_size: int | None = Field(None, ge=1, le=MAX_BATCH, description="Largest captured batch size (when batch_sizes is unset).")
    enable_padding: bool | None = Field(None, description="Pad a batch up to the next captured size so it still runs as a graph.")


class KvCacheOptions(_Options):
    """`kv_cache_config` (KvCacheConfig) beyond its dtype and memory fraction (build.kv_cache_dtype,
    serve.kv_cache_free_gpu_memory_fraction)."""

    enable_block_reuse: bool | None = Field(None, description="Reuse KV cache blocks of shared prefixes across requests.")


class MoeOptions(_Options):
    """`moe_config` (MoeConfig)."""

    backend: str | None = Field(None, description="MoE kernel backend, e.g. CUTLASS, TRTLLM, DEEPGEMM (the version's definitions list them).")


class SchedulerOptions(_Options):
    """`scheduler_config` (SchedulerConfig)."""

    capacity_scheduler_policy: Literal["MAX_UTILIZATION", "GUARANTEED_NO_EVICT", "STATIC_BATCH"] | None = Field(
        None, description="How requests are admitted against the KV cache.")


class LlmApiOptions(_Options):
    """TensorRT-LLM LLM API options written into the `--config` file (None: TensorRT-LLM's default)."""

    enable_chunked_prefill: bool | None = Field(None, description="Split long prompts into max_num_tokens chunks.")
    enable_attention_dp: bool | None = Field(None, description="Attention data parallelism across the tensor-parallel ranks (MoE models).")
    cuda_graph_config: CudaGraphOptions | None = Field(None, description="CUDA graph capture of decode steps.")
    kv_cache_config: KvCacheOptions | None = Field(None, description="KV cache reuse (dtype and memory fraction are build/serve fields).")
    moe_config: MoeOptions | None = Field(None, description="MoE backend.")
    scheduler_config: SchedulerOptions | None = Field(None, description="Capacity scheduler policy.")
    speculative_config: dict[str, Any] | None = Field(None, description="Speculative decoding (decoding_type: Eagle3, MTP, NGram, ...).")


# LLM API keys engineforge writes from other recipe fields (or the command line): set them there.
OWNED = {
    "max_batch_size": "build.max_batch_size", "max_input_len": "build.max_input_len", "max_seq_len": "build.max_seq_len",
    "max_num_tokens": "build.max_num_tokens", "dtype": "model.dtype", "tensor_parallel_size": "parallel.tensor",
    "pipeline_parallel_size": "parallel.pipeline", "moe_expert_parallel_size": "parallel.expert",
    "trust_remote_code": "model.trust_remote_code", "cache_transceiver_config": "serve.disaggregated",
    "kv_cache_config.dtype": "build.kv_cache_dtype",
    "kv_cache_config.free_gpu_memory_fraction": "serve.kv_cache_free_gpu_memory_fraction",
    "model": "model.source", "tokenizer": "model.source", "backend": "runtime",
}


class TrtllmSpec(BaseModel):
    """TensorRT-LLM: the version the recipe targets and LLM API options (runtimes trtllm, trtllm-engine)."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_default=True)

    version: Literal[ACCEPTED] = Field(  # type: ignore[valid-type]
        DEFAULT_VERSION, description="TensorRT-LLM version: 1.2.1 (latest stable, the last with trtllm-build) or "
        "1.3.0rc30 (PyTorch backend only). Chooses the image, flags and checks.")
    llm_api: LlmApiOptions = Field(default_factory=LlmApiOptions, description="LLM API options (TensorRT-LLM's names) "
                                   "written to the options file; checked against the version's definitions.")

    @model_validator(mode="after")
    def _not_owned_elsewhere(self) -> "TrtllmSpec":
        data = self.llm_api.model_dump(exclude_none=True)
        for key, field in OWNED.items():
            parent, _, leaf = key.rpartition(".")
            section = data.get(parent) if parent else data
            if isinstance(section, dict) and leaf in section:
                raise ValueError(f"llm_api.{key}: engineforge writes it from {field}; set it there")
        return self

    def options(self) -> dict[str, Any]:
        """The options as set, TensorRT-LLM's defaults left out."""
        return self.llm_api.model_dump(mode="json", exclude_none=True)
