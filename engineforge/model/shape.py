"""A Hugging Face model's shape, read from its `config.json`: the one reader and the one `ModelShape`.

The planner sizes weights and KV cache from it before any weight is downloaded, the roofline reads
it from a served directory, the sharder and the checkpoint verifier take their tensor shapes from it.
Covers decoder-only Llama-family models (Llama, Mistral, Qwen2-style) and Mixtral-style mixtures of
experts. Parameter counts follow the Hugging Face module layout: q/k/v/o projections, a gated MLP
(gate, up, down) or `num_local_experts` of them plus a router, two RMSNorms per layer, the embedding,
the final norm and an untied `lm_head`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from engineforge.errors import UserError
from engineforge.model.roots import read_regular

CONFIG_FILE = "config.json"
MAX_CONFIG_BYTES = 4 << 20  # the largest released config.json files are tens of kilobytes
REQUIRED = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size")


# config.json is untrusted input (a local model directory, a hub repository anyone can publish): the
# fields engineforge reads are typed and bounded here, once, before the planner multiplies them or a
# table is built per layer. The bounds sit far beyond released models (Llama 3.1 405B: hidden 16,384,
# 126 layers, 128 heads; Gemma 3: vocabulary 262,144; DeepSeek-V3: 256 experts; Llama 4 Scout:
# 10M positions) and keep every per-layer or per-expert table small.
INTEGER_RANGES = {
    "hidden_size": (1, 1 << 17),
    "num_hidden_layers": (1, 1024),
    "num_attention_heads": (1, 1024),
    "num_key_value_heads": (1, 1024),
    "head_dim": (1, 4096),
    "intermediate_size": (1, 1 << 20),
    "moe_intermediate_size": (1, 1 << 20),
    "vocab_size": (1, 1 << 22),
    "num_local_experts": (0, 1024),
    "num_experts": (0, 1024),
    "num_experts_per_tok": (0, 1024),
    "max_position_embeddings": (1, 1 << 27),
}
POSITIVE_FLOATS = ("rms_norm_eps", "rope_theta")
BOOLEANS = ("tie_word_embeddings", "attention_bias", "mlp_bias")
STRINGS = ("hidden_act", "torch_dtype", "dtype", "model_type")
MAPPINGS = ("rope_scaling", "rope_parameters", "quantization_config", "text_config")


def check_config(config: dict[str, Any], label: str) -> None:
    """One-line UserError naming the first field (null counts as absent) of the wrong type or out of
    range; a multimodal wrapper's `text_config` is checked the same way."""
    for field, (low, high) in INTEGER_RANGES.items():
        value = config.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high):
            _refuse(label, field, value, f"an integer from {low:,} to {high:,}")
    for field in POSITIVE_FLOATS:
        value = config.get(field)
        if value is not None and not _positive_number(value):
            _refuse(label, field, value, "a positive finite number")
    for field, kind, wanted in [*((f, bool, "true or false") for f in BOOLEANS),
                                *((f, str, "a string") for f in STRINGS), *((f, dict, "a JSON object") for f in MAPPINGS)]:
        value = config.get(field)
        if value is not None and not isinstance(value, kind):
            _refuse(label, field, value, wanted)
    architectures = config.get("architectures")
    if architectures is not None and not (
        isinstance(architectures, list) and all(isinstance(name, str) for name in architectures)
    ):
        _refuse(label, "architectures", architectures, "a list of class names (strings)")
    for field in ("rope_scaling", "rope_parameters"):
        theta = (config.get(field) or {}).get("rope_theta")
        if theta is not None and not _positive_number(theta):
            _refuse(label, f"{field}.rope_theta", theta, "a positive finite number")
    method = (config.get("quantization_config") or {}).get("quant_method")
    if method is not None and not isinstance(method, str):
        _refuse(label, "quantization_config.quant_method", method, "a string")
    if config.get("text_config"):
        check_config(config["text_config"], f"{label} text_config")


def _positive_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return 0 < float(value) and math.isfinite(float(value))
    except OverflowError:  # an integer beyond a float
        return False


def _refuse(label: str, field: str, value: object, wanted: str) -> None:
    raise UserError(f"{label}: {field} is {_shown(value)}; it must be {wanted}")


def _shown(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**12:
        return f"an integer of {len(str(abs(value)))} digits"
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class UnsupportedModel(UserError):
    """A config whose layout engineforge cannot size (the flow may still run an explicit layout unchecked)."""


def read_config(model_dir: Path | str, origin: str | None = None) -> dict[str, Any]:
    """`model_dir/config.json` as a dict with its values' types and ranges checked (`check_config`); a
    one-line UserError naming `origin` (what pointed here, e.g. the recipe field) and the directory
    when it is missing, not a regular file, too large, not a JSON object or holds an absurd value."""
    label = f"{origin} ({model_dir})" if origin and str(model_dir) not in origin else origin or str(model_dir)
    try:
        config = json.loads(read_regular(Path(model_dir) / CONFIG_FILE, MAX_CONFIG_BYTES))
    except FileNotFoundError:
        raise UserError(f"{label}: no {CONFIG_FILE}; point it at a Hugging Face model directory") from None
    except (ValueError, RecursionError) as error:  # JSONDecodeError, an int over Python's 4300 digits, deep nesting
        raise UserError(f"{label}: {CONFIG_FILE} is not valid JSON ({_first_line(error)}); re-download it") from None
    except OSError as error:
        raise UserError(f"{label}: cannot read {CONFIG_FILE} ({error.__class__.__name__}: {error})") from None
    if not isinstance(config, dict):
        raise UserError(f"{label}: {CONFIG_FILE} is not a JSON object; re-download it")
    check_config(config, f"{label}: {CONFIG_FILE}")
    return config


def read_model_shape(model_dir: Path | str) -> "ModelShape":
    return ModelShape.from_config(read_config(model_dir), name=Path(model_dir).name)


class ModelShape(BaseModel):
    """Sizes and options of a decoder-only causal LM (dense, or a Mixtral-style mixture of experts)."""

    model_config = ConfigDict(frozen=True)

    name: str = "model"
    architecture: str | None = None  # architectures[0]
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool = False
    num_experts: int = 0  # 0: a dense model
    experts_per_token: int = 0
    attention_bias: bool = False
    mlp_bias: bool = False
    hidden_act: str = "silu"
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: dict[str, Any] | None = None
    max_position_embeddings: int | None = None
    torch_dtype: str | None = None
    quant_method: str | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any], name: str = "model") -> "ModelShape":
        check_config(config, f"model config of {name}")
        # Multimodal wrappers keep the language model's shape under text_config.
        if "hidden_size" not in config and isinstance(config.get("text_config"), dict):
            config = {**config["text_config"], **{k: config[k] for k in ("torch_dtype", "dtype") if k in config}}
        missing = [field for field in REQUIRED if config.get(field) is None]
        if missing:
            raise UserError(
                f"model config of {name}: missing {', '.join(missing)}; engineforge needs them to size weights "
                "and KV cache (is this a decoder-only transformers config.json?)"
            )
        heads = config["num_attention_heads"]
        head_dim = config.get("head_dim") or config["hidden_size"] // heads
        if head_dim < 1:
            raise UserError(f"model config of {name}: hidden_size {config['hidden_size']} is smaller than "
                            f"num_attention_heads {heads}; set head_dim or fix the sizes")
        if not config.get("num_local_experts") and (config.get("num_experts") or config.get("moe_intermediate_size")):
            # Qwen/DeepSeek-style MoE (shared experts, own expert width, dense layers mixed in): not counted right here.
            raise UnsupportedModel(
                f"model config of {name}: model_type {config.get('model_type')!r} uses a mixture-of-experts layout "
                "engineforge does not model (only Mixtral-style num_local_experts)"
            )
        experts = config.get("num_local_experts") or 0
        quant = config.get("quantization_config")
        rope_theta, rope_scaling = _rope(config)
        return cls(
            name=name,
            architecture=(config.get("architectures") or [None])[0],
            hidden_size=config["hidden_size"],
            num_layers=config["num_hidden_layers"],
            num_heads=heads,
            num_kv_heads=config.get("num_key_value_heads") or heads,
            head_dim=head_dim,
            intermediate_size=config["intermediate_size"],
            vocab_size=config["vocab_size"],
            tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
            num_experts=experts,
            experts_per_token=(config.get("num_experts_per_tok") or 0) if experts else 0,
            attention_bias=bool(config.get("attention_bias", False)),
            mlp_bias=bool(config.get("mlp_bias", False)),
            hidden_act=config.get("hidden_act") or "silu",
            rms_norm_eps=float(config.get("rms_norm_eps") or 1e-6),
            rope_theta=rope_theta,
            rope_scaling=rope_scaling,
            max_position_embeddings=config.get("max_position_embeddings"),
            torch_dtype=config.get("torch_dtype") or config.get("dtype"),
            quant_method=quant.get("quant_method") if quant else None,
        )

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    # Parameter counts (elements, not bytes).

    def attention_params(self) -> int:
        h, q, kv = self.hidden_size, self.num_heads * self.head_dim, self.num_kv_heads * self.head_dim
        bias = (q + 2 * kv + h) if self.attention_bias else 0
        return h * q + 2 * h * kv + q * h + bias

    def expert_params(self) -> int:
        """One gated MLP (the dense MLP of a dense model, one expert of a MoE layer)."""
        h, i = self.hidden_size, self.intermediate_size
        return 3 * h * i + ((2 * i + h) if self.mlp_bias else 0)

    def layer_dense_params(self) -> int:
        """Per layer, what every tensor-parallel rank splits: attention, norms, router, a dense MLP."""
        router = self.hidden_size * self.num_experts
        mlp = 0 if self.is_moe else self.expert_params()
        return self.attention_params() + 2 * self.hidden_size + router + mlp

    def layer_expert_params(self) -> int:
        """Per layer, the experts (0 for a dense model)."""
        return self.num_experts * self.expert_params()

    def outer_params(self) -> int:
        """Outside the decoder layers: embedding, final norm and lm_head (absent when tied)."""
        embedding = self.vocab_size * self.hidden_size
        return embedding * (1 if self.tie_word_embeddings else 2) + self.hidden_size

    def total_params(self) -> int:
        return self.num_layers * (self.layer_dense_params() + self.layer_expert_params()) + self.outer_params()

    def active_params(self) -> int:
        """Parameters one token passes through (top-k experts of each MoE layer)."""
        experts = self.experts_per_token * self.expert_params() if self.is_moe else 0
        return self.num_layers * (self.layer_dense_params() + experts) + self.outer_params()


def _rope(config: dict[str, Any]) -> tuple[float, dict[str, Any] | None]:
    # transformers >= 5 nests RoPE settings in rope_parameters; earlier versions use
    # rope_theta + rope_scaling at the top level.
    params = dict(config.get("rope_parameters") or {})
    theta = float(params.pop("rope_theta", None) or config.get("rope_theta") or 10000.0)
    scaling = params or config.get("rope_scaling")
    if scaling and scaling.get("rope_type", scaling.get("type")) == "default":
        scaling = None
    return theta, scaling or None
