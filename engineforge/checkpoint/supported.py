"""Which Hugging Face models the sharder handles: the shape engineforge/model/shape.py reads, checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engineforge.errors import UserError
from engineforge.model.shape import CONFIG_FILE, ModelShape, read_config

SUPPORTED_ARCHITECTURES = ("LlamaForCausalLM", "MixtralForCausalLM")
# Fields a Mixtral config must carry for the expert split (a dense shape would silently drop them).
MOE_FIELDS = ("num_local_experts", "num_experts_per_tok")


def read_shardable_shape(hf_dir: Path) -> ModelShape:
    """The shape of `hf_dir`'s model; UserError naming the field for anything the sharder cannot handle."""
    return shardable_shape(read_config(hf_dir), Path(hf_dir) / CONFIG_FILE)


def shardable_shape(config: dict[str, Any], origin: Path | str = CONFIG_FILE) -> ModelShape:
    architectures = config.get("architectures") or []
    architecture = architectures[0] if architectures else None
    # Checked before the shape is read: another architecture's config may lack the fields it needs.
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise UserError(
            f"{origin}: architectures {architectures!r} is not supported; "
            f"the sharder handles {', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    if architecture == "MixtralForCausalLM":
        missing = [field for field in MOE_FIELDS if not config.get(field)]
        if missing:
            raise UserError(f"{origin}: missing {', '.join(missing)}; the config of a {architecture} needs it")
    shape = ModelShape.from_config(config, name=str(origin))
    for flag in ("attention_bias", "mlp_bias"):
        if getattr(shape, flag):
            raise UserError(f"{origin}: {flag}: true is not supported (biases are not sharded); use a model without biases")
    if shape.hidden_act != "silu":
        raise UserError(f"{origin}: hidden_act {shape.hidden_act!r} is not supported; Llama and Mixtral use silu")
    return shape
