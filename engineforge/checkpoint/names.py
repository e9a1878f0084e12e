"""The plan of one rank file: which TensorRT-LLM tensors it holds and, for each, the boxes of
canonical Hugging Face tensors whose bytes, concatenated in order, make it.

Every output tensor used here is a concatenation of C-order slices along its leading dimensions
(qkv = [q_r; k_r; v_r], Mixtral fc = per expert [w3_r; w1_r], lm_head = [rows; zero padding]),
so a rank file can be streamed piece by piece without assembling any tensor in memory.
Names, splits and orders follow ../shared/trtllm-facts.md (from tensorrt_llm/models/llama/convert.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engineforge.checkpoint.box_reader import Box
from engineforge.checkpoint.hf_reader import canonical_shapes, whole
from engineforge.checkpoint.mapping import (
    ParallelLayout,
    RankCoords,
    chunk,
    ep_experts,
    kv_heads_of_rank,
    pad_vocab,
    pp_layers,
)
from engineforge.checkpoint.safetensors_format import DTYPES
from engineforge.model.shape import ModelShape

ROUTER_DTYPE = "F32"  # the MoE router stays float32 whatever the checkpoint dtype (convert.py)


@dataclass(frozen=True)
class Piece:
    """A box of canonical tensor `source`, or zeros of the box's extents when `source` is None."""

    source: str | None
    box: Box

    @property
    def numel(self) -> int:
        return math.prod(b - a for a, b in self.box)


@dataclass(frozen=True)
class OutputTensor:
    name: str
    dtype: str  # safetensors code
    shape: tuple[int, ...]
    pieces: tuple[Piece, ...]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPES[self.dtype][1]


def rank_plan(shape: ModelShape, layout: ParallelLayout, coords: RankCoords, dtype: str) -> list[OutputTensor]:
    """Tensors of rank file `rank{coords.rank}.safetensors`, in file order; `dtype` is a safetensors code."""
    plan = _Plan(shape, layout, coords, dtype)
    layers = pp_layers(shape.num_layers, layout.pp, coords.pp_rank)
    if coords.pp_rank == 0:
        plan.replicated("transformer.vocab_embedding.weight", "model.embed_tokens.weight")
    for local, layer in enumerate(layers):  # each stage numbers its layers from 0
        plan.layer(f"transformer.layers.{local}.", f"model.layers.{layer}.")
    if coords.pp_rank == layout.pp - 1:
        plan.replicated("transformer.ln_f.weight", "model.norm.weight")
        plan.lm_head()
    return plan.tensors


class _Plan:
    def __init__(self, shape: ModelShape, layout: ParallelLayout, coords: RankCoords, dtype: str):
        self.shape, self.layout, self.coords, self.dtype = shape, layout, coords, dtype
        self.tensors: list[OutputTensor] = []
        self.shapes = canonical_shapes(shape)

    def add(self, name: str, out_shape: tuple[int, ...], pieces: list[Piece], dtype: str | None = None) -> None:
        assert sum(p.numel for p in pieces) == math.prod(out_shape), name
        self.tensors.append(OutputTensor(name, dtype or self.dtype, out_shape, tuple(pieces)))

    def replicated(self, name: str, source: str, dtype: str | None = None) -> None:
        src_shape = self.shapes[source]
        self.add(name, src_shape, [Piece(source, whole(src_shape))], dtype)

    def column(self, name: str, source: str) -> None:
        """Column-parallel linear: split dim 0 (out_features)."""
        rows, cols = self.shapes[source]
        part = chunk(rows, self.layout.tp, self.coords.tp_rank)
        self.add(name, (part[1] - part[0], cols), [Piece(source, (part, (0, cols)))])

    def row(self, name: str, source: str) -> None:
        """Row-parallel linear: split dim 1 (in_features); its outputs are summed by all-reduce."""
        rows, cols = self.shapes[source]
        part = chunk(cols, self.layout.tp, self.coords.tp_rank)
        self.add(name, (rows, part[1] - part[0]), [Piece(source, ((0, rows), part))])

    def layer(self, out: str, src: str) -> None:
        self.qkv(out + "attention.qkv.weight", src + "self_attn.")
        self.row(out + "attention.dense.weight", src + "self_attn.o_proj.weight")
        if self.shape.is_moe:
            self.experts(out + "mlp.", src + "block_sparse_moe.")
        else:
            # Crossed names: TensorRT-LLM's mlp.fc is HF gate_proj, its mlp.gate is HF up_proj.
            self.column(out + "mlp.fc.weight", src + "mlp.gate_proj.weight")
            self.column(out + "mlp.gate.weight", src + "mlp.up_proj.weight")
            self.row(out + "mlp.proj.weight", src + "mlp.down_proj.weight")
        self.replicated(out + "input_layernorm.weight", src + "input_layernorm.weight")
        self.replicated(out + "post_layernorm.weight", src + "post_attention_layernorm.weight")

    def qkv(self, name: str, src: str) -> None:
        shape, tp, tp_rank = self.shape, self.layout.tp, self.coords.tp_rank
        hd, h = shape.head_dim, shape.hidden_size
        q_rows = chunk(shape.num_heads * hd, tp, tp_rank)
        kv = kv_heads_of_rank(shape.num_kv_heads, tp, tp_rank)
        kv_rows = (kv.start * hd, kv.stop * hd)
        pieces = [
            Piece(src + "q_proj.weight", (q_rows, (0, h))),
            Piece(src + "k_proj.weight", (kv_rows, (0, h))),
            Piece(src + "v_proj.weight", (kv_rows, (0, h))),
        ]
        self.add(name, ((q_rows[1] - q_rows[0]) + 2 * (kv_rows[1] - kv_rows[0]), h), pieces)

    def experts(self, out: str, src: str) -> None:
        shape, layout, coords = self.shape, self.layout, self.coords
        h = shape.hidden_size
        experts = ep_experts(shape.num_experts, layout.ep, coords.moe_ep_rank)
        inter = chunk(shape.intermediate_size, layout.moe_tp, coords.moe_tp_rank)
        local = inter[1] - inter[0]
        fc, proj = [], []
        for e in experts:
            # mlp.fc = concat([w3, w1], dim=-2): up first, then gate.
            fc += [Piece(f"{src}experts.{e}.w3.weight", (inter, (0, h))), Piece(f"{src}experts.{e}.w1.weight", (inter, (0, h)))]
            proj.append(Piece(f"{src}experts.{e}.w2.weight", ((0, h), inter)))
        self.add(out + "fc.weight", (len(experts), 2 * local, h), fc)
        self.add(out + "proj.weight", (len(experts), h, local), proj)
        self.replicated(out + "router.weight", src + "gate.weight", ROUTER_DTYPE)

    def lm_head(self) -> None:
        vocab, h, tp = self.shape.vocab_size, self.shape.hidden_size, self.layout.tp
        start, stop = chunk(pad_vocab(vocab, tp), tp, self.coords.tp_rank)
        real = (min(start, vocab), min(stop, vocab))
        pieces = []
        if real[1] > real[0]:
            pieces.append(Piece("lm_head.weight", (real, (0, h))))
        if stop > real[1]:
            pieces.append(Piece(None, ((0, stop - max(start, vocab)), (0, h))))
        self.add("lm_head.weight", (stop - start, h), pieces)
