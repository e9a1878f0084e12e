"""The pipeline's stages in their order: `STAGES`, their names (`NAMES`, what `--refresh` accepts) and
`named`, for whatever goes over every stage (the dry run, the GPU slots, the CLI)."""

from __future__ import annotations

from engineforge.stages.build import BUILD
from engineforge.stages.download import DOWNLOAD
from engineforge.stages.package import PACKAGE
from engineforge.stages.quantize import QUANTIZE
from engineforge.stages.register import REGISTER
from engineforge.stages.shard import SHARD
from engineforge.stages.stage import Stage
from engineforge.stages.validate import VALIDATE

STAGES: tuple[Stage, ...] = (DOWNLOAD, QUANTIZE, SHARD, BUILD, VALIDATE, PACKAGE, REGISTER)
NAMES: tuple[str, ...] = tuple(stage.name for stage in STAGES)  # what `--refresh` accepts (with "all")


def named(name: str) -> Stage:
    """The stage called `name`."""
    return next(stage for stage in STAGES if stage.name == name)
