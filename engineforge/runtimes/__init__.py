"""Runtimes: how a recipe's model is built and served. Each says which stages apply to it."""

from __future__ import annotations

from engineforge.errors import UserError
from engineforge.runtimes.base import Runtime
from engineforge.runtimes.transformers import TransformersRuntime
from engineforge.runtimes.trtllm.engine import TrtllmEngineRuntime
from engineforge.runtimes.trtllm.pytorch import TrtllmRuntime

RUNTIMES: dict[str, Runtime] = {
    runtime.name: runtime for runtime in (TransformersRuntime(), TrtllmRuntime(), TrtllmEngineRuntime())
}


def get_runtime(name: str) -> Runtime:
    try:
        return RUNTIMES[name]
    except KeyError:
        raise UserError(
            f"runtime {name!r} is not available in this engineforge; available: {', '.join(sorted(RUNTIMES))}"
        ) from None
