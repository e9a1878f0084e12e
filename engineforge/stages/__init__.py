"""The pipeline's stages, each one typed value (`Stage`, engineforge/stages/stage.py) in its own module.

Each module holds what its stage is: its content key, its work, what it records in MLflow and how
it judges its result, its dry-run plan, the GPUs it uses and when it does not apply. `STAGES` is
their pipeline order; `tasks/stage.py` runs any of them as a Prefect task, and
`flows/model_to_deployment.py` calls them in that order.
"""

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
