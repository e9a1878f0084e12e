"""Sweeps: one recipe expanded into variants, measured side by side, compared, and a champion chosen."""
