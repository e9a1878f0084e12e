"""config.json of a TensorRT-LLM checkpoint (the input of trtllm-build).

Fields from ../shared/trtllm-facts.md and `tensorrt_llm/models/llama/config.py`
(LLaMAConfig.from_hugging_face: hidden_act "swiglu" and RENORMALIZE routing for Mixtral,
position_embedding_type "rope_gpt_neox", rotary_base from rope_theta).
"""

from __future__ import annotations

from typing import Any

from engineforge.checkpoint.mapping import ParallelLayout
from engineforge.model.shape import ModelShape

RENORMALIZE = 1  # MoeConfig.ExpertScaleNormalizationMode.RENORMALIZE (tensorrt_llm/layers/moe.py)
GPUS_PER_NODE = 8  # Mapping's default


def checkpoint_config(shape: ModelShape, layout: ParallelLayout, dtype: str) -> dict[str, Any]:
    """The checkpoint's config.json; `dtype` is a torch dtype name (float16, bfloat16, float32)."""
    return {
        "architecture": shape.architecture,
        "dtype": dtype,
        "logits_dtype": "float32",
        "vocab_size": shape.vocab_size,
        "max_position_embeddings": shape.max_position_embeddings,
        "hidden_size": shape.hidden_size,
        "num_hidden_layers": shape.num_layers,
        "num_attention_heads": shape.num_heads,
        "num_key_value_heads": shape.num_kv_heads,
        "head_size": shape.head_dim,
        # HF Mixtral gates its experts implicitly; TensorRT-LLM's MoE needs the gated activation named.
        "hidden_act": "swiglu" if shape.is_moe else "silu",
        "intermediate_size": shape.intermediate_size,
        "norm_epsilon": shape.rms_norm_eps,
        "position_embedding_type": "rope_gpt_neox",
        "rotary_base": shape.rope_theta,
        "rotary_scaling": shape.rope_scaling,
        "tie_word_embeddings": shape.tie_word_embeddings,
        "use_parallel_embedding": False,
        "embedding_sharding_dim": 0,
        "moe": {
            "num_experts": shape.num_experts,
            "top_k": shape.experts_per_token,
            "normalization_mode": RENORMALIZE if shape.is_moe else None,
        },
        "quantization": {"quant_algo": None, "kv_cache_quant_algo": None},
        "mapping": {
            "world_size": layout.world_size,
            "tp_size": layout.tp,
            "pp_size": layout.pp,
            "moe_tp_size": layout.moe_tp,
            "moe_ep_size": layout.ep,
            "cp_size": 1,
            "gpus_per_node": GPUS_PER_NODE,
        },
    }
