"""The recipe: one pydantic model, the single source of truth for what a run does.

Every section forbids unknown keys, so a typo is an error rather than a silently ignored
setting. `engineforge schema` prints `Recipe.model_json_schema()` for editors.
"""

from __future__ import annotations

import math
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

from engineforge.recipe.trtllm_section import TrtllmSpec
from engineforge.runtime_traits import RUNTIMES, runtime_traits
from engineforge.recipe.trtllm_section import trtllm_version

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
# An MLflow experiment name, never a path: no "/", and no leading "." (so never "..").
EXPERIMENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,127}$"
# `synthetic:NAME` without a `model.synthetic` section gets the default shape: only these names say so.
DEFAULT_SYNTHETIC_NAMES = ("tiny", "tiny-llama")

# Upper bounds: far above any real deployment, low enough that nothing downstream overflows.
MAX_GPUS = 1024  # per parallel dimension
MAX_GPUS_PER_NODE = 128  # an NVL72 rack is 72; `auto` plans every layout of a node, so keep it small
MAX_TOKENS = 1 << 24  # 16,777,216 tokens of context
MAX_BATCH = 1 << 16
MAX_REQUESTS = 1_000_000
MAX_SECONDS = 7 * 24 * 3600
MAX_REQUEST_RATE = 1e6  # requests/s
MAX_REPEATS = 100  # measurements of one variant; a t-interval narrows little past a few dozen


class Section(BaseModel):
    # strict: `true` is not 1 and "8" is not 8; no NaN or infinity where a figure is meant.
    model_config = ConfigDict(extra="forbid", validate_default=True, strict=True, allow_inf_nan=False)


def _positive_int_or_auto(value: Any) -> int | str:
    if value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_GPUS:
        raise ValueError(f'must be an integer from 1 to {MAX_GPUS} or "auto"')
    return value


ParallelSize = Annotated[
    int | Literal["auto"],
    BeforeValidator(_positive_int_or_auto),
    Field(json_schema_extra={"anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_GPUS}, {"const": "auto"}]}),
]

Dtype = Literal["auto", "float32", "float16", "bfloat16"]


class SyntheticModel(Section):
    """Shape of a `synthetic:` model: a Llama (or Mixtral, with experts) with random weights."""

    architecture: Literal["llama", "mixtral"] = Field("llama", description="Model family: a dense Llama or a Mixtral mixture of experts.")
    hidden_size: int = Field(64, ge=8, le=65536, description="Width of the residual stream.")
    intermediate_size: int = Field(128, ge=8, le=262144, description="Width of the MLP (of each expert, for mixtral).")
    num_hidden_layers: int = Field(2, ge=1, le=1024, description="Decoder layers.")
    num_attention_heads: int = Field(4, ge=1, le=1024, description="Query heads; must divide hidden_size.")
    num_key_value_heads: int = Field(2, ge=1, le=1024, description="KV heads (grouped-query attention); must divide num_attention_heads.")
    vocab_size: int = Field(512, ge=300, le=1 << 20, description="At least 300 so the trained tokenizer has room for bytes and merges.")
    max_position_embeddings: int = Field(512, ge=16, le=MAX_TOKENS, description="Longest sequence the model's positions cover.")
    tie_word_embeddings: bool = Field(False, description="Share the input embedding and the output head.")
    num_local_experts: int = Field(4, ge=1, le=1024, description="Experts per MoE layer (mixtral only).")
    num_experts_per_tok: int = Field(2, ge=1, le=1024, description="Experts each token is routed to (mixtral only).")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="Seed of the random weights: same seed, same bytes.")
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
        max_length=4096,
        description="hf://ORG/NAME[@REVISION], a local directory, or synthetic:NAME (shape from `synthetic`).",
    )
    dtype: Dtype = Field("auto", description="Weight dtype to serve; auto: the checkpoint's own (float32 for synthetic).")
    synthetic: SyntheticModel = Field(default_factory=SyntheticModel, description="Shape of a synthetic:NAME model.")
    trust_remote_code: bool = Field(False, description="Run the model repository's own Python code (only for sources you trust).")

    @field_validator("source")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        # A NUL cannot name a file (the OS refuses it), and a newline would split the one-line errors.
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("must not contain control characters (NUL, tab, newline, ...)")
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
    """How one model replica is split over GPUs; `parallel: auto` plans every size."""

    tensor: ParallelSize = Field(1, description='Tensor parallel size (GPUs each layer is split over), or "auto".')
    pipeline: ParallelSize = Field(1, description='Pipeline parallel size (stages of consecutive layers), or "auto".')
    expert: ParallelSize = Field(1, description='Expert parallel size (MoE experts split over the tensor group), or "auto".')
    gpus_per_node: int = Field(8, ge=1, le=MAX_GPUS_PER_NODE, description="GPUs in one node: tensor parallelism past it crosses the network.")

    @property
    def gpus(self) -> int:
        """The GPUs one copy of the model spans: tensor x pipeline, an unresolved "auto" counted as 1. The
        planner resolves "auto" before any stage runs; GPU limits are declared on the recipe as loaded."""
        return math.prod(size if isinstance(size, int) else 1 for size in (self.tensor, self.pipeline))


def _or_auto(schema: dict[str, Any]) -> None:
    # The schema says what _parallel_shorthand accepts: the section, or the word "auto".
    schema["anyOf"] = [{"$ref": schema.pop("$ref")}, {"const": "auto"}]


def _parallel_shorthand(value: Any) -> Any:
    # `parallel: auto` means every size is planned.
    if value == "auto":
        return {"tensor": "auto", "pipeline": "auto", "expert": "auto"}
    return value


class BuildSpec(Section):
    """Limits the engine (or servable directory) is built for."""

    max_batch_size: int = Field(8, ge=1, le=MAX_BATCH, description="Requests served together.")
    max_input_len: int = Field(256, ge=1, le=MAX_TOKENS, description="Longest prompt, in tokens.")
    max_seq_len: int = Field(512, ge=1, le=MAX_TOKENS, description="Longest prompt plus output, in tokens.")
    max_num_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS, description="Tokens in one forward pass (batch x chunk); default the runtime's.")
    kv_cache_dtype: Literal["auto", "float16", "bfloat16", "fp8", "int8"] = Field("auto", description="KV cache precision; auto: the weights' dtype.")
    gemm_plugin: str | None = Field("auto", description="trtllm-build --gemm_plugin (trtllm-engine); null: not passed.")
    gpt_attention_plugin: str | None = Field("auto", description="trtllm-build --gpt_attention_plugin (trtllm-engine); null: not passed.")
    use_paged_context_fmha: bool = Field(True, description="trtllm-build --use_paged_context_fmha (trtllm-engine).")
    multiple_profiles: bool = Field(False, description="trtllm-build --multiple_profiles (trtllm-engine).")
    timeout_s: int = Field(3600, ge=1, le=MAX_SECONDS, description="Wall-clock limit of the build stage.")

    @model_validator(mode="after")
    def _limits_consistent(self) -> "BuildSpec":
        if self.max_input_len > self.max_seq_len:
            raise ValueError("max_input_len must not exceed max_seq_len")
        return self


class DisaggregatedRole(Section):
    """One role of disaggregated serving: how many servers, and each one's parallel layout."""

    instances: int = Field(1, ge=1, le=MAX_GPUS, description="Servers of this role.")
    tp: int = Field(1, ge=1, le=MAX_GPUS, description="Tensor parallel size of each server.")
    pp: int = Field(1, ge=1, le=MAX_GPUS, description="Pipeline parallel size of each server.")
    ep: int = Field(1, ge=1, le=MAX_GPUS, description="Expert parallel size of each server (MoE).")

    @property
    def gpus(self) -> int:
        return self.instances * self.tp * self.pp


class DisaggregatedSpec(Section):
    """Context (prefill) and generation (decode) servers behind `trtllm-serve disaggregated` (runtime trtllm)."""

    context: DisaggregatedRole = Field(default_factory=DisaggregatedRole, description="Prefill servers.")
    generation: DisaggregatedRole = Field(default_factory=DisaggregatedRole, description="Decode servers.")
    cache_transceiver_backend: Literal["DEFAULT", "UCX", "NIXL"] = Field("DEFAULT", description="How KV cache moves from context to generation servers.")
    max_tokens_in_buffer: int | None = Field(None, ge=1, le=MAX_TOKENS, description="KV transfer buffer in tokens; default build.max_seq_len.")


class ServeSpec(Section):
    """How the validate stage and the container serve the model."""

    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="transformers runtime: cpu, cuda, or auto (cuda when a GPU is visible).")
    continuous_batching: bool = Field(
        True, description="Serve concurrent requests together (transformers serve --continuous-batching)."
    )
    kv_cache_free_gpu_memory_fraction: float = Field(0.9, gt=0, le=1, description="Share of free GPU memory the KV cache may take.")
    hub_kernels: bool = Field(
        False, description="Let the server fetch and run Hugging Face hub kernels (code from the hub, needs network). "
        "Off: hub kernels disabled and the hub offline (USE_HUB_KERNELS=NO, HF_HUB_OFFLINE=1), in validate and images.",
    )
    port: int = Field(8000, ge=1, le=65535, description="Port inside the serving container.")
    startup_timeout_s: int = Field(600, ge=1, le=MAX_SECONDS, description="How long a server may take to answer its health check.")
    disaggregated: DisaggregatedSpec | None = Field(None, description="Disaggregated serving (runtime trtllm only).")


class Gates(Section):
    """Targets the validation figures must reach before packaging and promotion."""

    min_output_tokens_per_s: float | None = Field(None, ge=0, description="Output tokens per second, all requests together, at least.")
    max_ttft_ms_p99: float | None = Field(None, gt=0, description="Time to first token, 99th percentile, at most (ms).")
    max_tpot_ms_p50: float | None = Field(None, gt=0, description="Time per output token, median, at most (ms).")
    max_error_rate: float | None = Field(None, ge=0, le=1, description="Share of failed requests, at most.")
    min_token_agreement: float | None = Field(None, ge=0, le=1, description="Share of greedy tokens matching the reference, at least.")


class TrtllmBenchSpec(Section):
    """An offline `trtllm-bench` run after the served benchmark (TensorRT-LLM runtimes only)."""

    mode: Literal["throughput", "latency"] = Field("throughput", description="trtllm-bench subcommand.")
    requests: int | None = Field(None, ge=1, le=MAX_REQUESTS, description="Default validate.requests.")
    concurrency: int | None = Field(None, ge=1, le=MAX_BATCH, description="Default validate.concurrency (1 for latency).")
    timeout_s: int = Field(1800, ge=1, le=MAX_SECONDS, description="Wall-clock limit of trtllm-bench.")


class ValidateSpec(Section):
    """The load the built model is served under, and the gates its figures must pass."""

    enabled: bool = Field(True, description="false: skip validation (nothing is measured or gated).")
    api: Literal["completions", "chat"] = Field("completions", description="OpenAI endpoint the requests use.")
    requests: int = Field(8, ge=1, le=MAX_REQUESTS, description="Measured requests.")
    concurrency: int = Field(2, ge=1, le=MAX_BATCH, description="Requests in flight at once (the cap on them with request_rate).")
    request_rate: float | None = Field(
        None, gt=0, le=MAX_REQUEST_RATE,
        description="Requests/s, sent open loop with Poisson arrivals; unset: a closed loop of `concurrency` requests.",
    )
    warmup_requests: int = Field(1, ge=0, le=MAX_REQUESTS, description="Requests sent before measuring (not counted).")
    max_tokens: int = Field(16, ge=1, le=MAX_TOKENS, description="Output tokens per request; prompt plus this must fit build.max_seq_len.")
    ignore_eos: bool = Field(True, description="Generate exactly max_tokens per request, so figures compare across runs.")
    prompts: list[str] = Field(
        default_factory=lambda: ["The capital of France is", "Once upon a time", "def fibonacci(n):"],
        min_length=1, description="Prompts the requests cycle through.",
    )
    timeout_s: int = Field(1800, ge=1, le=MAX_SECONDS, description="Wall-clock limit of the validate stage.")
    repeats: int = Field(1, ge=1, le=MAX_REPEATS, description="Measurements of the same load (each its own stored "
                         "result); every figure becomes their mean with a 95% confidence interval. 1: one measurement.")
    restart_server: bool = Field(True, description="Each repeat on a freshly started server (measures the spread between "
                                 "server processes); false: all repeats on one server, back to back.")
    cooldown_s: float = Field(0.0, ge=0, le=MAX_SECONDS, description="Idle seconds before each repeat after the first.")
    gates: Gates = Field(default_factory=Gates, description="Targets the figures must reach before packaging.")
    trtllm_bench: TrtllmBenchSpec | None = Field(None, description="Also run trtllm-bench (runtimes trtllm, trtllm-engine).")


class PackageSpec(Section):
    """The serving container image."""

    enabled: bool = Field(True, description="false: no image is built.")
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
    """Where the run is recorded in MLflow."""

    uri: str | None = Field(None, description="MLflow tracking URI, used only when $MLFLOW_TRACKING_URI is unset "
                            "(the operator's setting wins); default sqlite:///mlflow.db.")
    experiment: str | None = Field(None, pattern=EXPERIMENT_PATTERN,
                                   description="MLflow experiment name (a name, not a path: no / or leading .); default the recipe name.")
    register_model: bool = Field(True, description="Register the built artifact as an MLflow model version (alias candidate).")
    log_engine: Literal["auto", "always", "never"] = Field(
        "auto", description="Log stage outputs (the build as engine/ with MANIFEST.json) as run artifacts, and fetch "
        "those another host logged instead of recomputing: auto when the tracking URI is http(s); never keeps "
        "the registered version a reference to this host's store.")


OBJECTIVES = ("output_tokens_per_s_per_gpu", "output_tokens_per_s", "tokens_per_s_per_user",
              "ttft_ms_p50", "ttft_ms_p99", "tpot_ms_p50", "e2e_ms_p50")


class SweepLoad(Section):
    """One load point of a sweep: the validate section's concurrency, request rate and request count for a variant."""

    concurrency: int | None = Field(None, ge=1, le=MAX_BATCH, description="Requests in flight at once; default validate.concurrency.")
    request_rate: float | None = Field(None, gt=0, le=MAX_REQUEST_RATE, description="Requests/s (open loop); default validate.request_rate.")
    requests: int | None = Field(None, ge=1, description="Default validate.requests.")

    @model_validator(mode="after")
    def _sets_the_load(self) -> "SweepLoad":
        if self.concurrency is None and self.request_rate is None:
            raise ValueError("a load point sets concurrency, request_rate or both")
        return self

    def overrides(self) -> dict[str, int | float]:
        """The validate fields this point sets, as dotted recipe fields."""
        fields = {"concurrency": self.concurrency, "request_rate": self.request_rate, "requests": self.requests}
        return {f"validate.{name}": value for name, value in fields.items() if value is not None}


class SweepLayout(Section):
    """One parallel layout of a sweep (sizes left out are 1)."""

    tensor: int = Field(1, ge=1, le=MAX_GPUS, description="Tensor parallel size.")
    pipeline: int = Field(1, ge=1, le=MAX_GPUS, description="Pipeline parallel size.")
    expert: int = Field(1, ge=1, le=MAX_GPUS, description="Expert parallel size.")


class SweepCurated(Section):
    """NVIDIA's tuned trtllm-serve configs (TensorRT-LLM's examples/configs: curated/ and database/) for the model and
    GPU, each a variant measured beside the sweep's own (engineforge/trtllm/curated.py)."""

    configs: str = Field(..., min_length=1, max_length=4096, description="A checkout of TensorRT-LLM's examples/configs "
                         "directory (holding curated/ and database/); relative to the recipe file.")
    gpu: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="The GPU as NVIDIA's configs name it "
                     "(H100, H200, B200, GB200, ...): curated entries for it or for Any, database/<model>/<gpu>/.")
    model: str | None = Field(None, pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$", description="The model as NVIDIA's "
                              "configs name it (ORG/NAME); default the hf:// model.source.")
    isl: int | None = Field(None, ge=1, le=MAX_TOKENS, description="Only database configs for this input length (1024 for 1k).")
    osl: int | None = Field(None, ge=1, le=MAX_TOKENS, description="Only database configs for this output length.")


class SweepSpec(Section):
    """Variants of one recipe, measured side by side; the best one passing validate.gates is the champion."""

    matrix: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="Dotted recipe field -> values to try, e.g. build.max_batch_size: [4, 8]; every combination is a variant.",
    )
    layouts: Literal["auto"] | list[SweepLayout] | None = Field(
        None, description="Parallel layouts to try: a list, or auto for the planner's top_k feasible ones."
    )
    top_k: int = Field(3, ge=1, description="How many planned layouts `layouts: auto` takes.")
    curated: SweepCurated | None = Field(None, description="Also measure NVIDIA's curated and database trtllm-serve "
                                         "configs for the model and GPU (runtime trtllm), one variant each.")
    load: list[SweepLoad] = Field(default_factory=list, description="Load points; default the validate section's.")
    objective: Literal[OBJECTIVES] = Field(  # type: ignore[valid-type]
        "output_tokens_per_s_per_gpu", description="What the champion is best at (latencies: lowest; rates: highest)."
    )
    repeats: int = Field(3, ge=1, le=MAX_REPEATS, description="Measurements per variant; the champion must beat the "
                         "runner-up beyond their noise (Welch's t-test, 95%). 1: one measurement each, no test.")
    order: Literal["interleaved", "blocked"] = Field(
        "interleaved", description="interleaved: round-robin over the variants, one measurement at a time, each repeat on "
        "a fresh server (drift cancels, server-to-server spread measured); blocked: a variant's repeats back to back on "
        "one server (cheaper for slow-loading runtimes; measures within one server only).")
    cooldown_s: float = Field(0.0, ge=0, le=MAX_SECONDS, description="Idle seconds between two measurements.")

    @field_validator("matrix")
    @classmethod
    def _values_given(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for field, values in value.items():
            if not values:
                raise ValueError(f"{field}: give at least one value")
        return value


class CalibrationSpec(Section):
    """The text ModelOpt calibrates on; samples after the first `samples` are the held-out accuracy slice."""

    dataset: str | None = Field(None, description="A local JSON-lines file (a `text_field` per line) or text file "
                                "(one sample per line), or a hub dataset hf://datasets/ORG/NAME (its `split`, JSON "
                                "lines or parquet, downloaded once into the Hugging Face cache); default: the small "
                                "offline set shipped with engineforge.")
    split: str = Field("train", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                       description="The hub dataset's split (files named SPLIT.*, SPLIT-*.* or under SPLIT/).")
    text_field: str = Field("text", min_length=1, max_length=200,
                            description="The field (JSON lines) or column (parquet) holding each sample's text.")
    samples: int = Field(16, ge=1, description="Calibration samples (lines), each cut to seq_len tokens.")
    eval_samples: int = Field(8, ge=1, description="Held-out samples, after the calibration ones, for the accuracy report.")
    seq_len: int = Field(128, ge=8, le=MAX_TOKENS, description="Tokens each calibration sample is cut to.")
    batch_size: int = Field(4, ge=1, le=MAX_BATCH, description="Calibration samples per forward pass.")


class QuantizeGates(Section):
    """Accuracy the quantized model must keep against its unquantized source (held-out slice)."""

    max_perplexity_increase: float | None = Field(
        0.1, ge=0, description="Largest allowed relative perplexity increase (0.1 = 10 %); null: not gated.")
    min_token_agreement: float | None = Field(
        0.8, ge=0, le=1, description="Smallest allowed share of positions whose top-1 token matches the source.")


class QuantizeSpec(Section):
    """Post-training quantization through NVIDIA ModelOpt, between download and shard/build."""

    format: Literal["fp8", "int4_awq", "w4a8_awq", "nvfp4", "int8_sq"] = Field(..., description="ModelOpt quantization format of the weights.")
    kv_cache: Literal["fp8", "nvfp4", "none"] = Field("none", description="KV cache quantization; none: the weights' dtype.")
    calibration: CalibrationSpec = Field(default_factory=CalibrationSpec, description="The text ModelOpt calibrates on.")
    exclude: list[str] = Field(default_factory=lambda: ["lm_head"], description="Module name patterns left unquantized.")
    gates: QuantizeGates = Field(default_factory=QuantizeGates, description="Accuracy the quantized model must keep.")


class Recipe(Section):
    """A recipe: which model, which runtime, how to parallelise, build, validate and package it."""

    name: str = Field(..., pattern=NAME_PATTERN, description="Lowercase id; names the MLflow run and registered model.")
    model: ModelSpec = Field(..., description="The checkpoint: where it comes from and its dtype.")
    runtime: Literal[RUNTIMES] = Field(  # type: ignore[valid-type]
        "transformers", description="transformers (anywhere, CPU included), trtllm (TensorRT-LLM's PyTorch backend) or "
        "trtllm-engine (the legacy TensorRT engine path: trtllm-build, TensorRT-LLM 1.2.x only).")
    trtllm: TrtllmSpec | None = Field(None, description="TensorRT-LLM version and LLM API options (runtimes trtllm, "
                                      "trtllm-engine); default version 1.2.1.")
    parallel: Annotated[ParallelSpec, BeforeValidator(_parallel_shorthand)] = Field(
        default_factory=ParallelSpec, description='Parallel layout, or "auto" to plan every size.',
        json_schema_extra=_or_auto)
    build: BuildSpec = Field(default_factory=BuildSpec, description="Build limits.")
    serve: ServeSpec = Field(default_factory=ServeSpec, description="Serving options.")
    quantize: QuantizeSpec | None = Field(None, description="Quantize with ModelOpt before shard/build; none: serve as downloaded.")
    validate_: ValidateSpec = Field(default_factory=ValidateSpec, alias="validate", description="Validation load and gates.")
    package: PackageSpec = Field(default_factory=PackageSpec, description="Container packaging.")
    tracking: TrackingSpec = Field(default_factory=TrackingSpec, description="MLflow recording.")
    sweep: SweepSpec | None = Field(None, description="Run variants of this recipe side by side (flow `sweep`).")

    model_config = ConfigDict(**Section.model_config, populate_by_name=True)

    @model_validator(mode="after")
    def _runtime_features(self) -> "Recipe":
        traits = runtime_traits(self.runtime)
        if self.validate_.trtllm_bench is not None and not traits.tensorrt_llm:
            raise ValueError("validate.trtllm_bench needs runtime trtllm or trtllm-engine")
        self._trtllm_target()
        disaggregated = self.serve.disaggregated
        if disaggregated is not None:
            if not traits.llm_api:
                raise ValueError("serve.disaggregated needs runtime trtllm (TensorRT-LLM's PyTorch backend)")
            gpus = disaggregated.context.gpus + disaggregated.generation.gpus
            if gpus > self.parallel.gpus_per_node:
                raise ValueError(f"serve.disaggregated needs {gpus} GPUs, more than parallel.gpus_per_node "
                                 f"({self.parallel.gpus_per_node}); engineforge writes single-node layouts")
        self._validation_fits()
        self._repeats_in_one_place()
        return self

    def _trtllm_target(self) -> None:
        """A TensorRT-LLM recipe always names its version (the default when left out); the engine path ends with 1.2.x."""
        traits = runtime_traits(self.runtime)
        if not traits.tensorrt_llm:
            if self.trtllm is not None:
                raise ValueError("trtllm.version: the trtllm section needs runtime trtllm or trtllm-engine")
            return
        if self.trtllm is None:
            self.trtllm = TrtllmSpec()
        version = self.trtllm.version
        if traits.engine_path and not trtllm_version(version).engine_path:
            raise ValueError(f"trtllm.version: TensorRT-LLM {version} has no trtllm-build (the TensorRT engine path ends "
                             "with 1.2.x), so runtime trtllm-engine cannot target it; use runtime: trtllm, which "
                             "serves the Hugging Face checkpoint directly, or trtllm.version: 1.2.1")

    def _repeats_in_one_place(self) -> None:
        """A sweep sets every variant's repeats, order and cooldown from its own section."""
        if self.sweep is None:
            return
        validate = self.validate_
        for field, value, default, instead in (("repeats", validate.repeats, 1, "sweep.repeats"),
                                               ("restart_server", validate.restart_server, True, "sweep.order"),
                                               ("cooldown_s", validate.cooldown_s, 0.0, "sweep.cooldown_s")):
            if value != default:
                raise ValueError(f"validate.{field}: a sweep sets it for every variant; use {instead} instead")

    def _validation_fits(self) -> None:
        """A validate request is a prompt plus max_tokens: the server refuses it past build.max_seq_len."""
        validate, build = self.validate_, self.build
        if not validate.enabled:
            return
        # Byte-level tokenizers give at most one token per UTF-8 byte, plus BOS; the engine caps prompts at max_input_len.
        prompt = min(max(len(p.encode()) for p in validate.prompts) + 1, build.max_input_len)
        if prompt + validate.max_tokens > build.max_seq_len:
            raise ValueError(
                f"validate.max_tokens: {validate.max_tokens} output tokens plus the longest prompt (up to {prompt} tokens) "
                f"exceed build.max_seq_len {build.max_seq_len}; lower validate.max_tokens or raise build.max_seq_len"
            )

    @property
    def serves_on_cpu(self) -> bool:
        """A runtime that can serve on the CPU told to: no GPU layout applies."""
        return runtime_traits(self.runtime).cpu_capable and self.serve.device == "cpu"

    def section(self, name: str) -> dict[str, Any]:
        """One section as plain data (what a stage's cache key hashes)."""
        return self.model_dump(mode="json", by_alias=True)[name]

    def to_data(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)
