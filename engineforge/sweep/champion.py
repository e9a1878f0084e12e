"""The champion: the variant with the best objective among those that passed every gate."""

from __future__ import annotations

import math

from engineforge.sweep.table import VariantRecord, minimises


def choose(records: list[VariantRecord], objective: str) -> VariantRecord | None:
    """Best objective among passing variants with a measured objective; ties: fewer GPUs, then name.
    None when no variant passed (nothing may be promoted)."""
    sign = 1.0 if minimises(objective) else -1.0
    candidates = [r for r in records if r.passed and math.isfinite(r.figure(objective))]
    if not candidates:
        return None
    return min(candidates, key=lambda r: (sign * r.figure(objective), r.gpus, r.name))
