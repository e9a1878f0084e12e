"""What the sharder needs to know about a Hugging Face model, read from its config.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from engineforge.errors import UserError

# Hugging Face architecture -> family the name plan knows.
SUPPORTED_ARCHITECTURES = {"LlamaForCausalLM": "llama", "MixtralForCausalLM": "mixtral"}


class ModelShape(BaseModel):
    """Sizes and options of a Llama-family (dense or Mixtral MoE) causal LM."""

    model_config = ConfigDict(frozen=True)

    architecture: str
    family: str
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_size: int
    vocab_size: int
    tie_word_embeddings: bool
    num_experts: int = 0  # 0 for a dense model
    top_k: int = 0
    rms_norm_eps: float
    rope_theta: float
    rope_scaling: dict[str, Any] | None
    max_position_embeddings: int | None

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0


def read_model_shape(hf_dir: Path) -> ModelShape:
    """Read `hf_dir/config.json`; UserError naming the field for anything the sharder cannot handle."""
    path = Path(hf_dir) / "config.json"
    if not path.is_file():
        raise UserError(f"{hf_dir}: no config.json; point MODEL_DIR at a Hugging Face model directory")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: not valid JSON ({error}); re-download it") from None
    return shape_from_config(config, path)


def shape_from_config(config: dict[str, Any], path: Path | str = "config.json") -> ModelShape:
    architectures = config.get("architectures") or []
    architecture = architectures[0] if architectures else None
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise UserError(
            f"{path}: architectures {architectures!r} is not supported; "
            f"the sharder handles {', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    for flag in ("attention_bias", "mlp_bias"):
        if config.get(flag):
            raise UserError(f"{path}: {flag}: true is not supported (biases are not sharded); use a model without biases")
    if config.get("hidden_act", "silu") != "silu":
        raise UserError(f"{path}: hidden_act {config['hidden_act']!r} is not supported; Llama and Mixtral use silu")
    try:
        hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
        family = SUPPORTED_ARCHITECTURES[architecture]
        rope = _rope(config)
        return ModelShape(
            architecture=architecture,
            family=family,
            hidden_size=hidden,
            intermediate_size=int(config["intermediate_size"]),
            num_layers=int(config["num_hidden_layers"]),
            num_heads=heads,
            num_kv_heads=int(config.get("num_key_value_heads") or heads),
            head_size=int(config.get("head_dim") or hidden // heads),
            vocab_size=int(config["vocab_size"]),
            tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
            num_experts=int(config["num_local_experts"]) if family == "mixtral" else 0,
            top_k=int(config["num_experts_per_tok"]) if family == "mixtral" else 0,
            rms_norm_eps=float(config.get("rms_norm_eps", 1e-6)),
            rope_theta=rope[0],
            rope_scaling=rope[1],
            max_position_embeddings=config.get("max_position_embeddings"),
        )
    except KeyError as error:
        raise UserError(f"{path}: missing field {error.args[0]!r}; the config of a {architecture} needs it") from None


def _rope(config: dict[str, Any]) -> tuple[float, dict[str, Any] | None]:
    # transformers >= 5 nests RoPE settings in rope_parameters; earlier versions use
    # rope_theta + rope_scaling at the top level.
    params = dict(config.get("rope_parameters") or {})
    theta = float(params.pop("rope_theta", config.get("rope_theta", 10000.0)))
    scaling = params or config.get("rope_scaling")
    if scaling and scaling.get("rope_type", scaling.get("type")) == "default":
        scaling = None
    return theta, scaling or None
