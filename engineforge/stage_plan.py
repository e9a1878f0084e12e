"""A process a stage starts, as data: what runtimes hand to stages, and what `run --dry-run` prints.

In a dry run, paths are placeholders for the stage's store entry, which exists only once its inputs
are known (engineforge/stages/dry_run.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field


class Command(BaseModel):
    """One process: argv (never a shell string), extra environment, and the port a server listens on."""

    role: str = Field(..., description="server, context-0, generation-0, front, build, bench ...")
    argv: list[str]
    env: dict[str, str] = Field(default_factory=dict)
    port: int | str | None = Field(None, description="Port a server listens on (a placeholder in dry runs).")


class StagePlan(BaseModel):
    """What one stage would do: the commands it would run and the files it would write (path -> text)."""

    stage: str
    status: Literal["planned", "skipped"] = "planned"
    reason: str | None = None
    commands: list[Command] = Field(default_factory=list)
    files: dict[str, str] = Field(default_factory=dict)
    notes: dict[str, Any] = Field(default_factory=dict)


DOWNLOAD_DIR = "<download>/model"
SHARD_DIR = "<shard>"
BUILD_DIR = "<build>"
VALIDATE_DIR = "<validate>"
PORT = "<port>"
IMAGE = "<image>"


def merge(plan: StagePlan, extra: StagePlan | None) -> StagePlan:
    """`plan` followed by `extra`'s commands and files (the bench after the servers)."""
    if extra is None:
        return plan
    return plan.model_copy(update={"commands": [*plan.commands, *extra.commands], "files": {**plan.files, **extra.files}})


def write_files(directory: Path, files: dict[str, str]) -> None:
    """Write a plan's {name: text} under `directory` (absolute names are written where they point)."""
    for name, text in files.items():
        path = Path(directory) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
