"""The validate plan of a runtime that serves with one process: its serve_argv, on the given port."""

from __future__ import annotations

from pathlib import Path

from engineforge.recipe.schema import Recipe
from engineforge.stage_plan import Command, StagePlan


class SingleServer:
    """Mixin for runtimes whose serve_plan is just their serve_argv (Runtime.serve_plan's default)."""

    def serve_argv(self, recipe: Recipe, served_dir: Path, host: str, port: int | str, device: str) -> list[str]:
        raise NotImplementedError

    def serve_plan(self, recipe: Recipe, served_dir: str, host: str, port: int | str, device: str, workdir: str) -> StagePlan:
        argv = self.serve_argv(recipe, Path(served_dir), host, port, device)
        return StagePlan(stage="validate", commands=[Command(role="server", argv=argv, port=port)])
