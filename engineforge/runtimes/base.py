"""What every runtime provides to the stages."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from engineforge.recipe import Recipe
from engineforge.stage import StageOutput


class Runtime(Protocol):
    name: str
    stages: frozenset[str]  # the stages that apply; the others are reported as skipped

    def skip_reason(self, stage: str) -> str:
        """Why `stage` does not apply to this runtime (shown in the run table)."""

    def check_available(self) -> None:
        """Raise UserError naming what is missing and how to get it, before any work starts."""

    def build(self, recipe: Recipe, model_dir: Path, workdir: Path) -> StageOutput:
        """Turn the downloaded (or sharded) model into what the server loads, inside `workdir`."""

    def serve_argv(self, recipe: Recipe, served_dir: Path, host: str, port: int, device: str) -> list[str]:
        """The server command line for a built output."""

    def image_requirements(self) -> list[str]:
        """Python requirements the serving image installs."""

    def key_versions(self) -> dict[str, str | None]:
        """Tool versions that change this runtime's build output (part of the build key)."""
