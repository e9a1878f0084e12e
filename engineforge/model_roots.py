"""Which local directories a recipe's `model.source` (and other local paths) may name on this host.

A submitted recipe is untrusted input on a worker: its local path must not read whatever the
worker can read. `ENGINEFORGE_MODEL_ROOTS` (directories separated by os.pathsep) lists where local
models may live; unset means no limit (a user running their own recipes), and `engineforge worker`
sets it to the empty list unless the operator set it, so workers read no local directory by default.
"""

from __future__ import annotations

import os
from pathlib import Path

from engineforge.errors import UserError
from engineforge.settings import settings, variable

ROOTS_ENV = variable("MODEL_ROOTS")


def allowed_roots() -> list[Path] | None:
    """The resolved roots, or None when this host sets no limit."""
    value = settings().MODEL_ROOTS
    if value is None:
        return None
    return [Path(entry).expanduser().resolve() for entry in value.split(os.pathsep) if entry.strip()]


def check_model_path(path: Path, source: str, field: str = "model.source") -> Path:
    """`path` (already resolved: symlinks and `..` followed) if it lies under an allowed root; `field`
    names the recipe field that gave it (a model directory, or a data file such as calibration text)."""
    roots = allowed_roots()
    if roots is None or any(path == root or path.is_relative_to(root) for root in roots):
        return path
    where = ", ".join(map(str, roots)) if roots else "none"
    raise UserError(
        f"{field} {source}: local paths on this host must be under {ROOTS_ENV} ({where}); "
        "move the files there, ask the operator to allow their directory, or use hf://ORG/NAME"
    )
