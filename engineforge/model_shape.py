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
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from engineforge.errors import UserError

CONFIG_FILE = "config.json"
REQUIRED = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size")


class UnsupportedModel(UserError):
    """A config whose layout engineforge cannot size (the flow may still run an explicit layout unchecked)."""


def read_config(model_dir: Path | str, origin: str | None = None) -> dict[str, Any]:
    """`model_dir/config.json` as a dict; a UserError naming `origin` (what pointed here, e.g. the
    recipe field) and the directory when it is missing, unreadable or not a JSON object."""
    label = f"{origin} ({model_dir})" if origin else str(model_dir)
    try:
        config = json.loads((Path(model_dir) / CONFIG_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{label}: no {CONFIG_FILE}; point it at a Hugging Face model directory") from None
    except json.JSONDecodeError as error:
        raise UserError(f"{label}: {CONFIG_FILE} is not valid JSON ({error}); re-download it") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{label}: cannot read {CONFIG_FILE} ({error.__class__.__name__}: {error})") from None
    if not isinstance(config, dict):
        raise UserError(f"{label}: {CONFIG_FILE} is not a JSON object; re-download it")
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
        # Multimodal wrappers keep the language model's shape under text_config.
        if "hidden_size" not in config and isinstance(config.get("text_config"), dict):
            config = {**config["text_config"], **{k: config[k] for k in ("torch_dtype", "dtype") if k in config}}
        missing = [field for field in REQUIRED if config.get(field) is None]
        if missing:
            raise UserError(
                f"model config of {name}: missing {', '.join(missing)}; engineforge needs them to size weights "
                "and KV cache (is this a decoder-only transformers config.json?)"
            )
        heads = _positive(config, "num_attention_heads", name)
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
            hidden_size=_positive(config, "hidden_size", name),
            num_layers=_positive(config, "num_hidden_layers", name),
            num_heads=heads,
            num_kv_heads=_positive(config, "num_key_value_heads", name) if config.get("num_key_value_heads") else heads,
            head_dim=_positive(config, "head_dim", name) if config.get("head_dim") else config["hidden_size"] // heads,
            intermediate_size=_positive(config, "intermediate_size", name),
            vocab_size=_positive(config, "vocab_size", name),
            tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
            num_experts=int(experts),
            experts_per_token=int(config.get("num_experts_per_tok") or 0) if experts else 0,
            attention_bias=bool(config.get("attention_bias", False)),
            mlp_bias=bool(config.get("mlp_bias", False)),
            hidden_act=config.get("hidden_act") or "silu",
            rms_norm_eps=float(config.get("rms_norm_eps", 1e-6)),
            rope_theta=rope_theta,
            rope_scaling=rope_scaling,
            max_position_embeddings=config.get("max_position_embeddings"),
            torch_dtype=config.get("torch_dtype") or config.get("dtype"),
            quant_method=quant.get("quant_method") if isinstance(quant, dict) else None,
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


def _positive(config: dict[str, Any], field: str, name: str) -> int:
    value = config[field]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"model config of {name}: {field} is {value!r}; it must be a positive integer")
    return value


def _rope(config: dict[str, Any]) -> tuple[float, dict[str, Any] | None]:
    # transformers >= 5 nests RoPE settings in rope_parameters; earlier versions use
    # rope_theta + rope_scaling at the top level.
    params = dict(config.get("rope_parameters") or {})
    theta = float(params.pop("rope_theta", config.get("rope_theta", 10000.0)))
    scaling = params or config.get("rope_scaling")
    if scaling and scaling.get("rope_type", scaling.get("type")) == "default":
        scaling = None
    return theta, scaling or None
