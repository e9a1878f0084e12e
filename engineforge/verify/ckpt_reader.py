"""Read a TensorRT-LLM checkpoint directory (config.json + rank{N}.safetensors).

Used by verification, so it relies only on the checkpoint itself (whoever wrote it) and reads
rank files through the safetensors library, an independent check of what our writer produced.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engineforge.checkpoint.mapping import ParallelLayout, RankCoords, pp_layers
from engineforge.errors import UserError


class TrtllmCheckpoint:
    def __init__(self, ckpt_dir: Path):
        self.dir = Path(ckpt_dir)
        path = self.dir / "config.json"
        if not path.is_file():
            raise UserError(f"{self.dir}: no config.json; point CKPT_DIR at a TensorRT-LLM checkpoint directory")
        self.config: dict[str, Any] = json.loads(path.read_text())
        mapping = self.config.get("mapping", {})
        tp, pp = int(mapping.get("tp_size", 1)), int(mapping.get("pp_size", 1))
        if int(mapping.get("cp_size", 1)) != 1:
            raise UserError(f"{path}: mapping.cp_size {mapping['cp_size']} is not supported; only cp_size 1")
        self.layout = ParallelLayout(tp=tp, pp=pp, ep=int(mapping.get("moe_ep_size", 1)))
        world = int(mapping.get("world_size", tp * pp))
        if world != self.layout.world_size:
            raise UserError(f"{path}: mapping.world_size {world} != tp_size * pp_size {tp * pp}")
        for rank in range(world):
            if not self.rank_path(rank).is_file():
                raise UserError(f"{self.rank_path(rank)}: missing; the checkpoint is incomplete, re-run the shard step")
        self._cache: dict[int, dict] = {}

    def rank_path(self, rank: int) -> Path:
        return self.dir / f"rank{rank}.safetensors"

    def coords(self, rank: int) -> RankCoords:
        return self.layout.coords(rank)

    def stage_layers(self, pp_rank: int) -> range:
        return pp_layers(int(self.config["num_hidden_layers"]), self.layout.pp, pp_rank)

    def stage_of_layer(self, layer: int) -> tuple[int, int]:
        """(pipeline stage, local layer index) of a global layer."""
        for stage in range(self.layout.pp):
            layers = self.stage_layers(stage)
            if layer in layers:
                return stage, layer - layers.start
        raise IndexError(layer)

    def weights(self, rank: int) -> dict:
        """All tensors of one rank file (cached)."""
        if rank not in self._cache:
            from safetensors.torch import load_file

            self._cache[rank] = load_file(self.rank_path(rank))
        return self._cache[rank]

    def tensor(self, rank: int, name: str):
        weights = self.weights(rank)
        if name not in weights:
            raise LayoutMismatch(f"{self.rank_path(rank).name} lacks {name}")
        return weights[name]


class LayoutMismatch(Exception):
    """The rank files do not have the layout their config.json promises."""
