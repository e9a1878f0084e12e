"""Rebuild each Hugging Face weight from the rank files of a TensorRT-LLM checkpoint.

Written from the format (../shared/trtllm-facts.md), not from the sharder's plan, so it checks
any checkpoint in that format; replicas (norms, embeddings, duplicated KV heads, routers) must
agree across ranks and lm_head padding rows must be zero.
"""

from __future__ import annotations

from typing import Callable

from engineforge.checkpoint.mapping import pad_vocab
from engineforge.verify.ckpt_reader import LayoutMismatch, TrtllmCheckpoint


def reassemblers(ckpt: TrtllmCheckpoint) -> dict[str, Callable[[], object]]:
    """Canonical HF name -> function returning that weight rebuilt from the rank files.

    Names are the released layout's (Mixtral experts as block_sparse_moe.experts.{e}.w1/w2/w3).
    A function raises LayoutMismatch when the rank files are inconsistent.
    """
    c = ckpt.config
    out: dict[str, Callable[[], object]] = {}
    last = ckpt.layout.pp - 1
    out["model.embed_tokens.weight"] = lambda: _embedding(ckpt)
    for layer in range(int(c["num_hidden_layers"])):
        stage, local = ckpt.stage_of_layer(layer)
        src, dst = f"model.layers.{layer}.", f"transformer.layers.{local}."
        for which in "qkv":
            out[f"{src}self_attn.{which}_proj.weight"] = _bind(_qkv_part, ckpt, stage, dst, which)
        out[src + "self_attn.o_proj.weight"] = _bind(_cat, ckpt, stage, dst + "attention.dense.weight", 1)
        if num_experts(c) > 0:
            out[src + "block_sparse_moe.gate.weight"] = _bind(_replicated, ckpt, stage, dst + "mlp.router.weight")
            for e in range(num_experts(c)):
                for which in ("w1", "w2", "w3"):
                    out[f"{src}block_sparse_moe.experts.{e}.{which}.weight"] = _bind(_expert, ckpt, stage, dst, e, which)
        else:
            out[src + "mlp.gate_proj.weight"] = _bind(_cat, ckpt, stage, dst + "mlp.fc.weight", 0)
            out[src + "mlp.up_proj.weight"] = _bind(_cat, ckpt, stage, dst + "mlp.gate.weight", 0)
            out[src + "mlp.down_proj.weight"] = _bind(_cat, ckpt, stage, dst + "mlp.proj.weight", 1)
        out[src + "input_layernorm.weight"] = _bind(_replicated, ckpt, stage, dst + "input_layernorm.weight")
        out[src + "post_attention_layernorm.weight"] = _bind(_replicated, ckpt, stage, dst + "post_layernorm.weight")
    out["model.norm.weight"] = lambda: _replicated(ckpt, last, "transformer.ln_f.weight")
    out["lm_head.weight"] = lambda: _lm_head(ckpt, last)
    return out


def num_experts(config: dict) -> int:
    """Experts per MoE layer, 0 for a dense model. ModelOpt's TensorRT-LLM export writes no `moe` for a
    Llama; TensorRT-LLM's LLaMAConfig (tensorrt_llm/models/llama/config.py) then reads the legacy
    `moe_num_experts`, default 0."""
    if "moe" not in config:
        return int(config.get("moe_num_experts", 0))
    return int(config["moe"]["num_experts"])


def _bind(function, *args):
    return lambda: function(*args)


def _stage(ckpt: TrtllmCheckpoint, stage: int) -> list[int]:
    return ckpt.layout.stage_ranks(stage)


def _replicated(ckpt: TrtllmCheckpoint, stage: int, name: str):
    import torch

    copies = [ckpt.tensor(rank, name) for rank in _stage(ckpt, stage)]
    for rank, copy in zip(_stage(ckpt, stage)[1:], copies[1:]):
        if not torch.equal(copy, copies[0]):
            raise LayoutMismatch(f"{name}: rank{rank} differs from its replica on rank{_stage(ckpt, stage)[0]}")
    return copies[0]


def _embedding(ckpt: TrtllmCheckpoint):
    """Replicated on the first stage's ranks, or, with `use_parallel_embedding` (ModelOpt's export sets it),
    split over them along `embedding_sharding_dim`, a split vocabulary padded to a multiple of tp."""
    name = "transformer.vocab_embedding.weight"
    if not ckpt.config.get("use_parallel_embedding"):
        return _replicated(ckpt, 0, name)
    return _cat(ckpt, 0, name, int(ckpt.config.get("embedding_sharding_dim", 0)))[: int(ckpt.config["vocab_size"])]


def _cat(ckpt: TrtllmCheckpoint, stage: int, name: str, dim: int):
    import torch

    return torch.cat([ckpt.tensor(rank, name) for rank in _stage(ckpt, stage)], dim=dim)


def _qkv_part(ckpt: TrtllmCheckpoint, stage: int, prefix: str, which: str):
    """q, k or v from the per-rank fused [q_r; k_r; v_r]; KV heads repeated over ranks collapse back to one."""
    import torch

    c, tp = ckpt.config, ckpt.layout.tp
    hd = int(c["head_size"])
    q_rows = int(c["num_attention_heads"]) * hd // tp
    parts = []
    for rank in _stage(ckpt, stage):
        qkv = ckpt.tensor(rank, prefix + "attention.qkv.weight")
        kv_rows = (qkv.shape[0] - q_rows) // 2
        bounds = {"q": (0, q_rows), "k": (q_rows, q_rows + kv_rows), "v": (q_rows + kv_rows, qkv.shape[0])}[which]
        parts.append(qkv[bounds[0]:bounds[1]])
    kv_heads = int(c["num_key_value_heads"])
    if which == "q" or kv_heads >= tp:
        return torch.cat(parts)
    reps = tp // kv_heads
    for rank, part in enumerate(parts):
        if not torch.equal(part, parts[rank - rank % reps]):
            raise LayoutMismatch(f"{prefix}attention.qkv.weight: duplicated {which} head differs between tp ranks {rank - rank % reps} and {rank}")
    return torch.cat(parts[::reps])


def _expert(ckpt: TrtllmCheckpoint, stage: int, prefix: str, expert: int, which: str):
    """w1/w2/w3 of one expert: its EP rank holds it at a local index, its MoE-TP ranks split it."""
    import torch

    layout = ckpt.layout
    per_rank = num_experts(ckpt.config) // layout.ep
    ep_rank, local = divmod(expert, per_rank)
    parts = []
    for moe_tp_rank in range(layout.moe_tp):
        rank = _stage(ckpt, stage)[moe_tp_rank * layout.ep + ep_rank]  # tp_rank = moe_tp_rank * ep + moe_ep_rank
        if which == "w2":
            parts.append(ckpt.tensor(rank, prefix + "mlp.proj.weight")[local])
            continue
        fc = ckpt.tensor(rank, prefix + "mlp.fc.weight")[local]  # [w3; w1]: up first, then gate
        half = fc.shape[0] // 2
        parts.append(fc[half:] if which == "w1" else fc[:half])
    return torch.cat(parts, dim=1 if which == "w2" else 0)


def _lm_head(ckpt: TrtllmCheckpoint, stage: int):
    vocab = int(ckpt.config["vocab_size"])
    full = _cat(ckpt, stage, "lm_head.weight", 0)
    if full.shape[0] != pad_vocab(vocab, ckpt.layout.tp):
        raise LayoutMismatch(f"lm_head.weight: {full.shape[0]} rows over all tp ranks, expected {pad_vocab(vocab, ckpt.layout.tp)}")
    if full[vocab:].count_nonzero():
        raise LayoutMismatch("lm_head.weight: vocabulary padding rows are not zero")
    return full[:vocab]


def expected_rank_names(ckpt: TrtllmCheckpoint, rank: int) -> set[str]:
    """Names a rank file must hold, no more and no less."""
    coords = ckpt.coords(rank)
    moe = num_experts(ckpt.config) > 0
    suffixes = ["attention.qkv.weight", "attention.dense.weight", "input_layernorm.weight", "post_layernorm.weight"]
    suffixes += ["mlp.fc.weight", "mlp.proj.weight"] + (["mlp.router.weight"] if moe else ["mlp.gate.weight"])
    names = {f"transformer.layers.{i}.{s}" for i in range(len(ckpt.stage_layers(coords.pp_rank))) for s in suffixes}
    if coords.pp_rank == 0:
        names.add("transformer.vocab_embedding.weight")
    if coords.pp_rank == ckpt.layout.pp - 1:
        names |= {"transformer.ln_f.weight", "lm_head.weight"}
    return names
