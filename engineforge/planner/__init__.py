"""Parallelism planner: which tensor/pipeline/expert layout a model needs on which GPUs, and why.

`resolve_parallel` is what the flow calls before heavy stages; `plan` is what `engineforge plan` shows.
"""

from engineforge.gpus import CATALOGUE, GpuSpec, detect_gpus, find_gpu
from engineforge.planner.config_source import load_model_config
from engineforge.planner.planner import (
    Candidate,
    PlanResult,
    is_auto,
    plan,
    resolve_parallel,
)

__all__ = [
    "CATALOGUE",
    "Candidate",
    "GpuSpec",
    "PlanResult",
    "detect_gpus",
    "find_gpu",
    "is_auto",
    "load_model_config",
    "plan",
    "resolve_parallel",
]
