"""Parallelism planner: which tensor/pipeline/expert layout a model needs on which GPUs, and why.

`resolve_parallel` is what the flow calls before heavy stages; `plan` is what `engineforge plan` shows.
"""

from engineforge.planner.config_source import load_model_config
from engineforge.planner.planner import plan, resolve_parallel

__all__ = ["load_model_config", "plan", "resolve_parallel"]
