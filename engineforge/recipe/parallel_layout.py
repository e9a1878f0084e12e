"""One resolved parallel layout: how one copy of the model is split over GPUs, in whole sizes.

The recipe's `parallel:` section may say "auto"; the planner resolves it before any stage runs, and
from there on the planner, the sharder, the runtimes' command lines and the tags speak of this one type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from engineforge.recipe.schema import ParallelSpec


class ParallelLayout(NamedTuple):
    tp: int
    pp: int
    ep: int = 1

    @classmethod
    def of(cls, parallel: ParallelSpec) -> ParallelLayout:
        """The recipe's sizes, once resolved (int() refuses an unresolved "auto")."""
        return cls(int(parallel.tensor), int(parallel.pipeline), int(parallel.expert))

    @property
    def world_size(self) -> int:
        """The GPUs (ranks) one copy spans: experts split the tensor group and add none."""
        return self.tp * self.pp

    @property
    def moe_tp(self) -> int:
        """The ways each expert is split (TensorRT-LLM: moe_tp x moe_ep = tp)."""
        return max(1, self.tp // self.ep)

    @property
    def label(self) -> str:
        return f"tp{self.tp}-pp{self.pp}-ep{self.ep}"
