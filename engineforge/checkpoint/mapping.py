"""Rank, layer and expert arithmetic of a TensorRT-LLM checkpoint (cp_size 1).

Mirrors `tensorrt_llm/mapping.py` (Mapping.tp_rank/pp_rank/moe_ep_rank/moe_tp_rank, pp_layers,
ep_experts) and the padding of `tensorrt_llm/_utils.py:pad_vocab_size`; see
../shared/trtllm-facts.md.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from engineforge.errors import UserError
from engineforge.model.shape import ModelShape


class RankCoords(BaseModel):
    """Where one global rank sits in the parallel layout."""

    model_config = ConfigDict(frozen=True)

    rank: int
    tp_rank: int
    pp_rank: int
    moe_tp_rank: int
    moe_ep_rank: int


class ParallelLayout(BaseModel):
    """Tensor, pipeline and expert parallel sizes; MoE tensor parallelism is tp // ep."""

    model_config = ConfigDict(frozen=True)

    tp: int = Field(1, ge=1)
    pp: int = Field(1, ge=1)
    ep: int = Field(1, ge=1)

    @property
    def world_size(self) -> int:
        return self.tp * self.pp

    @property
    def moe_tp(self) -> int:
        return self.tp // self.ep

    def coords(self, rank: int) -> RankCoords:
        tp_rank = rank % self.tp
        return RankCoords(
            rank=rank,
            tp_rank=tp_rank,
            pp_rank=rank // self.tp,
            moe_tp_rank=tp_rank // self.ep,
            moe_ep_rank=tp_rank % self.ep,
        )

    def ranks(self) -> list[RankCoords]:
        return [self.coords(rank) for rank in range(self.world_size)]

    def stage_ranks(self, pp_rank: int) -> list[int]:
        """Global ranks of one pipeline stage, in tp_rank order."""
        return [pp_rank * self.tp + tp_rank for tp_rank in range(self.tp)]


def pp_layers(num_layers: int, pp: int, pp_rank: int) -> range:
    """Layers of one pipeline stage: torch.tensor_split(arange(num_layers), pp)[pp_rank]."""
    base, extra = divmod(num_layers, pp)
    start = pp_rank * base + min(pp_rank, extra)
    return range(start, start + base + (1 if pp_rank < extra else 0))


def ep_experts(num_experts: int, ep: int, ep_rank: int) -> range:
    """Experts held by one expert-parallel rank (Mapping.ep_experts)."""
    per_rank = num_experts // ep
    return range(ep_rank * per_rank, (ep_rank + 1) * per_rank)


def pad_vocab(vocab_size: int, tp: int) -> int:
    """lm_head rows after zero padding: ceil(vocab / tp) * tp."""
    return -(-vocab_size // tp) * tp


def chunk(size: int, parts: int, index: int) -> tuple[int, int]:
    """torch.chunk(range(size), parts)[index] as (start, stop); callers ensure parts divides size."""
    assert size % parts == 0, (size, parts)
    step = size // parts
    return index * step, (index + 1) * step


def kv_heads_of_rank(num_kv_heads: int, tp: int, tp_rank: int) -> range:
    """Source KV heads a rank holds. With fewer KV heads than ranks each head is repeated
    tp // num_kv_heads times before the split (`dup_kv_weight`), so a rank holds exactly one."""
    if num_kv_heads < tp:
        head = tp_rank // (tp // num_kv_heads)
        return range(head, head + 1)
    return range(*chunk(num_kv_heads, tp, tp_rank))


def check_layout(shape: ModelShape, layout: ParallelLayout) -> None:
    """UserError (one line naming the value and the fix) for a layout the model cannot take."""
    tp, pp, ep = layout.tp, layout.pp, layout.ep
    if shape.num_heads % tp:
        raise UserError(f"--tp {tp}: num_attention_heads {shape.num_heads} is not divisible by it; use a divisor of {shape.num_heads}")
    kv = shape.num_kv_heads
    if kv < tp and tp % kv:
        raise UserError(
            f"--tp {tp}: num_key_value_heads {kv} cannot be duplicated evenly over {tp} ranks "
            f"(needs tp % kv_heads == 0); use a tp that is a multiple of {kv}"
        )
    if kv >= tp and kv % tp:
        raise UserError(f"--tp {tp}: num_key_value_heads {kv} is not divisible by it; use a divisor of {kv}")
    if pp > shape.num_layers:
        raise UserError(f"--pp {pp}: more pipeline ranks than the model's {shape.num_layers} layers; use at most {shape.num_layers}")
    if not shape.is_moe:
        if ep != 1:
            raise UserError(f"--ep {ep}: {shape.architecture} has no experts; leave --ep at 1")
        if shape.intermediate_size % tp:
            raise UserError(f"--tp {tp}: intermediate_size {shape.intermediate_size} is not divisible by it; use a divisor of it")
        return
    if shape.num_experts % ep:
        raise UserError(f"--ep {ep}: num_local_experts {shape.num_experts} is not divisible by it; use a divisor of {shape.num_experts}")
    if tp % ep:
        raise UserError(f"--ep {ep}: must divide --tp {tp} (moe_tp_size * moe_ep_size == tp_size); use a divisor of {tp}")
    if shape.intermediate_size % layout.moe_tp:
        raise UserError(
            f"--tp {tp} --ep {ep}: intermediate_size {shape.intermediate_size} is not divisible by "
            f"moe_tp_size {layout.moe_tp}; raise --ep or lower --tp"
        )
