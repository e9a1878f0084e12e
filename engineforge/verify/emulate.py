"""A forward pass over the rank files that does what TP/PP ranks do, in one process.

Per-rank functions take one rank's weights and return that rank's *partial* result; the
emulated collectives then combine them as NCCL would (all-reduce = sum of row-parallel partials,
all-gather = concatenation of column-parallel shards), and pipeline stages run in sequence, each
handing its hidden states to the next. Nothing here reassembles full weights. The per-rank
functions are what a multi-process run (torch.distributed) would call on each rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from engineforge.verify.ckpt_reader import TrtllmCheckpoint

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class RankModel:
    """One rank's weights plus what it needs from config.json, upcast on use."""

    weights: dict
    config: dict
    tp: int
    moe_ep_rank: int
    device: str = "cpu"

    def w(self, name: str) -> "torch.Tensor":
        import torch

        return self.weights[name].to(self.device, torch.float32)


def rms_norm(x: "torch.Tensor", weight: "torch.Tensor", eps: float) -> "torch.Tensor":
    import torch

    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def apply_rope(x: "torch.Tensor", cos: "torch.Tensor", sin: "torch.Tensor") -> "torch.Tensor":
    """rope_gpt_neox: rotate the two halves of each head (x: batch, heads, seq, head_size)."""
    import torch

    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1)


def embed_rank(rank: RankModel, input_ids: "torch.Tensor") -> "torch.Tensor":
    return rank.w("transformer.vocab_embedding.weight")[input_ids]


def attention_partial(rank: RankModel, prefix: str, x: "torch.Tensor", cos, sin) -> "torch.Tensor":
    """This rank's heads, then its slice of the row-parallel dense: a partial to all-reduce."""
    import torch

    batch, seq, _ = x.shape
    hd = int(rank.config["head_size"])
    q_rows = int(rank.config["num_attention_heads"]) // rank.tp * hd
    qkv = x @ rank.w(prefix + "attention.qkv.weight").T
    kv_rows = (qkv.shape[-1] - q_rows) // 2
    q, k, v = qkv.split([q_rows, kv_rows, kv_rows], dim=-1)
    q, k, v = (t.reshape(batch, seq, -1, hd).transpose(1, 2) for t in (q, k, v))
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    group = q.shape[1] // k.shape[1]  # query heads per local KV head (GQA)
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, scale=hd**-0.5)
    return out.transpose(1, 2).reshape(batch, seq, q_rows) @ rank.w(prefix + "attention.dense.weight").T


def mlp_partial(rank: RankModel, prefix: str, x: "torch.Tensor") -> "torch.Tensor":
    """Gated MLP: proj(silu(fc(x)) * gate(x)), fc = HF gate_proj, gate = HF up_proj."""
    import torch

    hidden = torch.nn.functional.silu(x @ rank.w(prefix + "mlp.fc.weight").T) * (x @ rank.w(prefix + "mlp.gate.weight").T)
    return hidden @ rank.w(prefix + "mlp.proj.weight").T


def moe_partial(rank: RankModel, prefix: str, x: "torch.Tensor") -> "torch.Tensor":
    """Route with the (replicated, float32) router, run this rank's experts on its intermediate slice."""
    import torch

    moe = rank.config["moe"]
    flat = x.reshape(-1, x.shape[-1])
    probs = torch.softmax(flat @ rank.w(prefix + "mlp.router.weight").T, dim=-1)
    weights, chosen = torch.topk(probs, int(moe["top_k"]), dim=-1)
    if moe.get("normalization_mode") == 1:  # RENORMALIZE
        weights = weights / weights.sum(dim=-1, keepdim=True)
    fc, proj = rank.w(prefix + "mlp.fc.weight"), rank.w(prefix + "mlp.proj.weight")
    half = fc.shape[1] // 2
    out = torch.zeros_like(flat)
    for local in range(fc.shape[0]):
        tokens, slot = torch.where(chosen == rank.moe_ep_rank * fc.shape[0] + local)
        if tokens.numel() == 0:
            continue
        up, gate = fc[local, :half], fc[local, half:]  # fc = [w3; w1]
        xe = flat[tokens]
        y = (torch.nn.functional.silu(xe @ gate.T) * (xe @ up.T)) @ proj[local].T
        out.index_add_(0, tokens, y * weights[tokens, slot, None])
    return out.reshape(x.shape)


def attention_step(rank: RankModel, prefix: str, x: "torch.Tensor", cos, sin) -> "torch.Tensor":
    """Input norm and attention of one rank: the partial its tp group all-reduces and adds to x."""
    eps = float(rank.config["norm_epsilon"])
    return attention_partial(rank, prefix, rms_norm(x, rank.w(prefix + "input_layernorm.weight"), eps), cos, sin)


def ffn_step(rank: RankModel, prefix: str, x: "torch.Tensor") -> "torch.Tensor":
    """Post-attention norm and MLP (dense or MoE) of one rank: a partial to all-reduce and add to x."""
    normed = rms_norm(x, rank.w(prefix + "post_layernorm.weight"), float(rank.config["norm_epsilon"]))
    moe = int(rank.config.get("moe", {}).get("num_experts", 0)) > 0
    return moe_partial(rank, prefix, normed) if moe else mlp_partial(rank, prefix, normed)


def lm_head_shard(rank: RankModel, x: "torch.Tensor") -> "torch.Tensor":
    """Final norm and this rank's rows of the (padded) lm_head: a shard to all-gather."""
    return rms_norm(x, rank.w("transformer.ln_f.weight"), float(rank.config["norm_epsilon"])) @ rank.w("lm_head.weight").T


def emulate_logits(ckpt: TrtllmCheckpoint, input_ids: "torch.Tensor", cos, sin, device: str = "cpu") -> "torch.Tensor":
    """Logits (batch, seq, vocab) from the rank files, stage after stage.

    Every rank keeps its own copy of the hidden states; rank t of a stage receives those of
    rank t of the previous stage (the pipeline send/recv).
    """
    import torch

    layout = ckpt.layout
    input_ids, cos, sin = input_ids.to(device), cos.to(device), sin.to(device)
    hidden: list[torch.Tensor] = []
    for stage in range(layout.pp):
        ranks = [
            RankModel(ckpt.weights(r), ckpt.config, layout.tp, ckpt.coords(r).moe_ep_rank, device)
            for r in layout.stage_ranks(stage)
        ]
        if stage == 0:
            hidden = [embed_rank(rank, input_ids) for rank in ranks]
        for local in range(len(ckpt.stage_layers(stage))):
            prefix = f"transformer.layers.{local}."
            hidden = _add_all_reduced(hidden, [attention_step(r, prefix, h, cos, sin) for r, h in zip(ranks, hidden)])
            hidden = _add_all_reduced(hidden, [ffn_step(r, prefix, h) for r, h in zip(ranks, hidden)])
    shards = [lm_head_shard(rank, h) for rank, h in zip(ranks, hidden)]
    return torch.cat(shards, dim=-1)[..., : int(ckpt.config["vocab_size"])]  # all-gather, drop padding


def _add_all_reduced(hidden: list, partials: list) -> list:
    """Residual add of an all-reduce: every rank gets the same sum of the partials."""
    total = sum(partials[1:], partials[0])
    return [h + total for h in hidden]
