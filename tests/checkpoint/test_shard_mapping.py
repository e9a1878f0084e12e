"""Rank, layer, expert and vocabulary arithmetic against TensorRT-LLM's definitions.

Sources (NVIDIA/TensorRT-LLM): tensorrt_llm/mapping.py (Mapping: tp_rank = rank % tp_size,
pp_rank = rank // tp_size, moe_ep_rank = tp_rank % moe_ep_size, moe_tp_rank = tp_rank //
moe_ep_size, pp_layers via torch.tensor_split, ep_experts, and the group examples in its
docstring), tensorrt_llm/models/convert_utils.py (dup_kv_weight, split = torch.chunk),
tensorrt_llm/_utils.py (pad_vocab_size).
"""

from __future__ import annotations

import pytest
import torch

from engineforge.checkpoint.mapping import (
    ParallelLayout,
    check_layout,
    chunk,
    ep_experts,
    kv_heads_of_rank,
    pad_vocab,
    pp_layers,
)
from engineforge.errors import UserError
from engineforge.model.shape import ModelShape


def shape(**overrides) -> ModelShape:
    fields = dict(
        architecture="LlamaForCausalLM", hidden_size=64, intermediate_size=128, num_layers=4,
        num_heads=8, num_kv_heads=4, head_dim=8, vocab_size=301, tie_word_embeddings=False,
        rms_norm_eps=1e-5, rope_theta=10000.0, rope_scaling=None, max_position_embeddings=512,
    )
    if overrides.pop("moe", False):
        fields.update(architecture="MixtralForCausalLM", num_experts=4, experts_per_token=2)
    return ModelShape(**fields | overrides)


@pytest.mark.parametrize("layers,pp", [(5, 2), (5, 3), (7, 3), (4, 4), (10, 1)])
def test_pp_layers_match_torch_tensor_split(layers, pp):
    expected = [t.tolist() for t in torch.tensor_split(torch.arange(layers), pp)]
    assert [list(pp_layers(layers, pp, rank)) for rank in range(pp)] == expected


def test_moe_groups_match_the_mapping_docstring_example():
    # "A node with 8 GPUs, moe_tp_size = 2, moe_ep_size = 4": moe_tp groups [0,4] [1,5] [2,6] [3,7],
    # moe_ep groups [0,1,2,3] [4,5,6,7].
    layout = ParallelLayout(tp=8, pp=1, ep=4)
    assert layout.moe_tp == 2
    ranks = layout.ranks()
    moe_tp_groups = sorted({tuple(r.rank for r in ranks if r.moe_ep_rank == e) for e in range(4)})
    moe_ep_groups = sorted({tuple(r.rank for r in ranks if r.moe_tp_rank == t) for t in range(2)})
    assert moe_tp_groups == [(0, 4), (1, 5), (2, 6), (3, 7)]
    assert moe_ep_groups == [(0, 1, 2, 3), (4, 5, 6, 7)]


def test_tp_and_pp_groups_match_the_mapping_docstring_example():
    # "A node with 8 GPUs, tp_size = 4, pp_size = 2": tp groups [0,1,2,3] [4,5,6,7]; pp groups [0,4] [1,5] [2,6] [3,7].
    layout = ParallelLayout(tp=4, pp=2)
    ranks = layout.ranks()
    assert [layout.stage_ranks(s) for s in range(2)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert sorted({tuple(r.rank for r in ranks if r.tp_rank == t) for t in range(4)}) == [(0, 4), (1, 5), (2, 6), (3, 7)]


@pytest.mark.parametrize("experts,ep", [(8, 1), (8, 2), (8, 8), (6, 3)])
def test_ep_experts_partition_all_experts_in_order(experts, ep):
    held = [list(ep_experts(experts, ep, rank)) for rank in range(ep)]
    assert sum(held, []) == list(range(experts))
    assert len({len(h) for h in held}) == 1


@pytest.mark.parametrize("kv,tp", [(2, 4), (1, 8), (2, 8), (4, 4), (8, 2)])
def test_kv_heads_of_rank_match_dup_kv_weight_then_chunk(kv, tp):
    # dup_kv_weight repeats each head tp // kv times (expand over a new axis 1), then split = torch.chunk.
    heads = torch.arange(kv)
    if kv < tp:
        heads = heads[:, None].expand(kv, tp // kv).reshape(-1)
    expected = [c.tolist() for c in torch.chunk(heads, tp)]
    assert [list(kv_heads_of_rank(kv, tp, r)) for r in range(tp)] == expected


@pytest.mark.parametrize("vocab,tp", [(301, 1), (301, 2), (301, 4), (32000, 8), (32001, 8)])
def test_vocab_padding_and_chunks(vocab, tp):
    padded = pad_vocab(vocab, tp)
    assert padded % tp == 0 and 0 <= padded - vocab < tp
    rows = torch.arange(padded)
    assert [chunk(padded, tp, r) for r in range(tp)] == [(int(c[0]), int(c[-1]) + 1) for c in torch.chunk(rows, tp)]


@pytest.mark.parametrize(
    "model,layout,needle",
    [
        (shape(num_heads=8), ParallelLayout(tp=3), "--tp 3: num_attention_heads 8"),
        (shape(num_heads=12, num_kv_heads=3, hidden_size=96), ParallelLayout(tp=4), "--tp 4: num_key_value_heads 3 cannot be duplicated"),
        (shape(num_heads=12, num_kv_heads=6, hidden_size=96), ParallelLayout(tp=4), "--tp 4: num_key_value_heads 6 is not divisible"),
        (shape(num_layers=4), ParallelLayout(pp=5), "--pp 5: more pipeline ranks than the model's 4 layers"),
        (shape(), ParallelLayout(tp=2, ep=2), "--ep 2: LlamaForCausalLM has no experts"),
        (shape(intermediate_size=100), ParallelLayout(tp=8), "--tp 8: intermediate_size 100"),
        (shape(moe=True, num_experts=6), ParallelLayout(tp=4, ep=4), "--ep 4: num_local_experts 6"),
        (shape(moe=True), ParallelLayout(tp=2, ep=4), "--ep 4: must divide --tp 2"),
        (shape(moe=True, intermediate_size=100), ParallelLayout(tp=8, ep=1), "moe_tp_size 8"),
    ],
)
def test_check_layout_rejects_with_one_line_naming_the_value(model, layout, needle):
    with pytest.raises(UserError) as error:
        check_layout(model, layout)
    assert needle in str(error.value) and "\n" not in str(error.value)
