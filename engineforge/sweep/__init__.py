"""Sweeps: one recipe expanded into variants, measured side by side, compared, and a champion chosen."""

from contextvars import ContextVar

# The variant whose child run this thread is executing (for progress lines that say which variant).
CURRENT_VARIANT: ContextVar[str | None] = ContextVar("engineforge_sweep_variant", default=None)
