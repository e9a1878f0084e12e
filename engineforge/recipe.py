"""The recipe: one pydantic model, the single source of truth for what a run does.

Every section forbids unknown keys, so a typo is an error rather than a silently ignored
setting. `engineforge schema` prints `Recipe.model_json_schema()` for editors.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
RUNTIMES = ("transformers", "trtllm", "trtllm-engine")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


def _positive_int_or_auto(value: Any) -> int | str:
    if value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError('must be a positive integer or "auto"')
    return value


ParallelSize = Annotated[
    int | Literal["auto"],
    BeforeValidator(_positive_int_or_auto),
    Field(json_schema_extra={"anyOf": [{"type": "integer", "minimum": 1}, {"const": "auto"}]}),
]

Dtype = Literal["auto", "float32", "float16", "bfloat16"]


class SyntheticModel(Section):
    """Shape of a `synthetic:` model: a Llama (or Mixtral, with experts) with random weights."""

    architecture: Literal["llama", "mixtral"] = "llama"
    hidden_size: int = Field(64, ge=8)
    intermediate_size: int = Field(128, ge=8)
    num_hidden_layers: int = Field(2, ge=1)
    num_attention_heads: int = Field(4, ge=1)
    num_key_value_heads: int = Field(2, ge=1)
    vocab_size: int = Field(512, ge=300, description="At least 300 so the trained tokenizer has room for bytes and merges.")
    max_position_embeddings: int = Field(512, ge=16)
    tie_word_embeddings: bool = False
    num_local_experts: int = Field(4, ge=1, description="mixtral only")
    num_experts_per_tok: int = Field(2, ge=1, description="mixtral only")
    seed: int = 0
    max_shard_size: str | None = Field(None, description='Split the checkpoint into files of this size, e.g. "2GB".')

    @model_validator(mode="after")
    def _heads_divide(self) -> "SyntheticModel":
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be divisible by num_attention_heads")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be divisible by num_key_value_heads")
        return self


class ModelSpec(Section):
    source: str = Field(
        ...,
        description="hf://ORG/NAME[@REVISION], a local directory, or synthetic:NAME (shape from `synthetic`).",
    )
    dtype: Dtype = "auto"
    synthetic: SyntheticModel = Field(default_factory=SyntheticModel)
    trust_remote_code: bool = False

    @field_validator("source")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value.startswith("hf://"):
            repo = value[len("hf://"):].split("@", 1)
            if not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", repo[0]) or (len(repo) == 2 and not repo[1]):
                raise ValueError('must look like "hf://ORG/NAME" or "hf://ORG/NAME@REVISION"')
        elif value.startswith("synthetic:"):
            if not re.fullmatch(NAME_PATTERN, value[len("synthetic:"):]):
                raise ValueError('synthetic models are named "synthetic:NAME" (lowercase letters, digits, . _ -)')
        elif not value or "://" in value:
            raise ValueError('must be "hf://ORG/NAME[@REVISION]", a local directory, or "synthetic:NAME"')
        return value


class ParallelSpec(Section):
    tensor: ParallelSize = 1
    pipeline: ParallelSize = 1
    expert: ParallelSize = 1
    gpus_per_node: int = Field(8, ge=1)


def _parallel_shorthand(value: Any) -> Any:
    # `parallel: auto` means every size is planned.
    if value == "auto":
        return {"tensor": "auto", "pipeline": "auto", "expert": "auto"}
    return value


class BuildSpec(Section):
    max_batch_size: int = Field(8, ge=1)
    max_input_len: int = Field(256, ge=1)
    max_seq_len: int = Field(512, ge=1)
    max_num_tokens: int | None = Field(None, ge=1)
    kv_cache_dtype: Literal["auto", "float16", "bfloat16", "fp8", "int8"] = "auto"
    gemm_plugin: str | None = "auto"
    gpt_attention_plugin: str | None = "auto"
    use_paged_context_fmha: bool = True
    multiple_profiles: bool = False
    timeout_s: int = Field(3600, ge=1, description="Wall-clock limit of the build stage.")

    @model_validator(mode="after")
    def _limits_consistent(self) -> "BuildSpec":
        if self.max_input_len > self.max_seq_len:
            raise ValueError("max_input_len must not exceed max_seq_len")
        return self


class DisaggregatedRole(Section):
    """One role of disaggregated serving: how many servers, and each one's parallel layout."""

    instances: int = Field(1, ge=1)
    tp: int = Field(1, ge=1, description="Tensor parallel size of each server.")
    pp: int = Field(1, ge=1, description="Pipeline parallel size of each server.")
    ep: int = Field(1, ge=1, description="Expert parallel size of each server (MoE).")

    @property
    def gpus(self) -> int:
        return self.instances * self.tp * self.pp


class DisaggregatedSpec(Section):
    """Context (prefill) and generation (decode) servers behind `trtllm-serve disaggregated` (runtime trtllm)."""

    context: DisaggregatedRole = Field(default_factory=DisaggregatedRole)
    generation: DisaggregatedRole = Field(default_factory=DisaggregatedRole)
    cache_transceiver_backend: Literal["DEFAULT", "UCX", "NIXL"] = "DEFAULT"
    max_tokens_in_buffer: int | None = Field(None, ge=1, description="KV transfer buffer in tokens; default build.max_seq_len.")


class ServeSpec(Section):
    device: Literal["auto", "cpu", "cuda"] = "auto"
    continuous_batching: bool = Field(
        True, description="Serve concurrent requests together (transformers serve --continuous-batching)."
    )
    kv_cache_free_gpu_memory_fraction: float = Field(0.9, gt=0, le=1)
    port: int = Field(8000, ge=1, le=65535, description="Port inside the serving container.")
    startup_timeout_s: int = Field(600, ge=1)
    disaggregated: DisaggregatedSpec | None = Field(None, description="Disaggregated serving (runtime trtllm only).")


class Gates(Section):
    """Targets the validation figures must reach before packaging and promotion."""

    min_output_tokens_per_s: float | None = Field(None, ge=0)
    max_ttft_ms_p99: float | None = Field(None, gt=0)
    max_tpot_ms_p50: float | None = Field(None, gt=0)
    max_error_rate: float | None = Field(None, ge=0, le=1)
    min_token_agreement: float | None = Field(None, ge=0, le=1)


class TrtllmBenchSpec(Section):
    """An offline `trtllm-bench` run after the served benchmark (TensorRT-LLM runtimes only)."""

    mode: Literal["throughput", "latency"] = "throughput"
    requests: int | None = Field(None, ge=1, description="Default validate.requests.")
    concurrency: int | None = Field(None, ge=1, description="Default validate.concurrency (1 for latency).")
    timeout_s: int = Field(1800, ge=1)


class ValidateSpec(Section):
    enabled: bool = True
    api: Literal["completions", "chat"] = "completions"
    requests: int = Field(8, ge=1)
    concurrency: int = Field(2, ge=1)
    warmup_requests: int = Field(1, ge=0)
    max_tokens: int = Field(16, ge=1)
    ignore_eos: bool = Field(True, description="Generate exactly max_tokens per request, so figures compare across runs.")
    prompts: list[str] = Field(
        default_factory=lambda: ["The capital of France is", "Once upon a time", "def fibonacci(n):"],
        min_length=1,
    )
    timeout_s: int = Field(1800, ge=1, description="Wall-clock limit of the validate stage.")
    gates: Gates = Field(default_factory=Gates)
    trtllm_bench: TrtllmBenchSpec | None = Field(None, description="Also run trtllm-bench (runtimes trtllm, trtllm-engine).")


class PackageSpec(Section):
    enabled: bool = True
    base: str | None = Field(None, description="Base image reference; default depends on the runtime.")
    image: str | None = Field(None, description="Image repository; default engineforge/<recipe name>.")
    registry: str | None = Field(None, description="Registry host[:port] to push to; no push when unset.")

    @field_validator("image", "registry", "base")
    @classmethod
    def _reference_chars(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:/@-]*", value):
            raise ValueError("may contain only letters, digits and . _ : / @ -")
        return value


class TrackingSpec(Section):
    uri: str | None = Field(None, description="MLflow tracking URI; default $MLFLOW_TRACKING_URI or sqlite:///mlflow.db.")
    experiment: str | None = Field(None, description="MLflow experiment; default engineforge/<recipe name>.")
    register_model: bool = Field(True, description="Register the built artifact as an MLflow model version (alias candidate).")


OBJECTIVES = ("output_tokens_per_s_per_gpu", "output_tokens_per_s", "tokens_per_s_per_user",
              "ttft_ms_p50", "ttft_ms_p99", "tpot_ms_p50", "e2e_ms_p50")


class SweepLoad(Section):
    """One load point of a sweep: the validate section's concurrency (and request count) for a variant."""

    concurrency: int = Field(..., ge=1)
    requests: int | None = Field(None, ge=1, description="Default validate.requests.")


class SweepSpec(Section):
    """Variants of one recipe, measured side by side; the best one passing validate.gates is the champion."""

    matrix: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="Dotted recipe field -> values to try, e.g. build.max_batch_size: [4, 8]; every combination is a variant.",
    )
    layouts: Literal["auto"] | None = Field(None, description="auto: the planner's top_k feasible parallel layouts.")
    top_k: int = Field(3, ge=1, description="How many planned layouts `layouts: auto` takes.")
    load: list[SweepLoad] = Field(default_factory=list, description="Load points; default the validate section's.")
    objective: Literal[OBJECTIVES] = Field(  # type: ignore[valid-type]
        "output_tokens_per_s_per_gpu", description="What the champion is best at (latencies: lowest; rates: highest)."
    )

    @field_validator("matrix")
    @classmethod
    def _values_given(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for field, values in value.items():
            if not values:
                raise ValueError(f"{field}: give at least one value")
        return value


class CalibrationSpec(Section):
    """The text ModelOpt calibrates on; samples after the first `samples` are the held-out accuracy slice."""

    dataset: str | None = Field(None, description="A local JSON-lines file (a `text` field per line) or text file "
                                "(one sample per line); default: the small offline set shipped with engineforge.")
    samples: int = Field(16, ge=1, description="Calibration samples (lines), each cut to seq_len tokens.")
    eval_samples: int = Field(8, ge=1, description="Held-out samples, after the calibration ones, for the accuracy report.")
    seq_len: int = Field(128, ge=8)
    batch_size: int = Field(4, ge=1)


class QuantizeGates(Section):
    """Accuracy the quantized model must keep against its unquantized source (held-out slice)."""

    max_perplexity_increase: float | None = Field(
        0.1, ge=0, description="Largest allowed relative perplexity increase (0.1 = 10 %); null: not gated.")
    min_token_agreement: float | None = Field(
        0.8, ge=0, le=1, description="Smallest allowed share of positions whose top-1 token matches the source.")


class QuantizeSpec(Section):
    """Post-training quantization through NVIDIA ModelOpt, between download and shard/build."""

    format: Literal["fp8", "int4_awq", "w4a8_awq", "nvfp4", "int8_sq"]
    kv_cache: Literal["fp8", "nvfp4", "none"] = "none"
    calibration: CalibrationSpec = Field(default_factory=CalibrationSpec)
    exclude: list[str] = Field(default_factory=lambda: ["lm_head"], description="Module name patterns left unquantized.")
    gates: QuantizeGates = Field(default_factory=QuantizeGates)


class Recipe(Section):
    """A recipe: which model, which runtime, how to parallelise, build, validate and package it."""

    name: str = Field(..., pattern=NAME_PATTERN, description="Lowercase id; names the MLflow run and registered model.")
    model: ModelSpec
    runtime: Literal["transformers", "trtllm", "trtllm-engine"] = "transformers"
    parallel: Annotated[ParallelSpec, BeforeValidator(_parallel_shorthand)] = Field(default_factory=ParallelSpec)
    build: BuildSpec = Field(default_factory=BuildSpec)
    serve: ServeSpec = Field(default_factory=ServeSpec)
    quantize: QuantizeSpec | None = Field(None, description="Quantize with ModelOpt before shard/build; none: serve as downloaded.")
    validate_: ValidateSpec = Field(default_factory=ValidateSpec, alias="validate")
    package: PackageSpec = Field(default_factory=PackageSpec)
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    sweep: SweepSpec | None = Field(None, description="Run variants of this recipe side by side (flow `sweep`).")

    model_config = ConfigDict(extra="forbid", validate_default=True, populate_by_name=True)

    @model_validator(mode="after")
    def _runtime_features(self) -> "Recipe":
        if self.validate_.trtllm_bench is not None and not self.runtime.startswith("trtllm"):
            raise ValueError("validate.trtllm_bench needs runtime trtllm or trtllm-engine")
        disaggregated = self.serve.disaggregated
        if disaggregated is not None:
            if self.runtime != "trtllm":
                raise ValueError("serve.disaggregated needs runtime trtllm (TensorRT-LLM's PyTorch backend)")
            gpus = disaggregated.context.gpus + disaggregated.generation.gpus
            if gpus > self.parallel.gpus_per_node:
                raise ValueError(f"serve.disaggregated needs {gpus} GPUs, more than parallel.gpus_per_node "
                                 f"({self.parallel.gpus_per_node}); engineforge writes single-node layouts")
        return self

    def section(self, name: str) -> dict[str, Any]:
        """One section as plain data (what a stage's cache key hashes)."""
        return self.model_dump(mode="json", by_alias=True)[name]

    def to_data(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)
