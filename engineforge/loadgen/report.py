"""Tables of a run's figures and of a sweep, for the terminal (rich)."""

from __future__ import annotations

import math

from rich.table import Table

from engineforge.loadgen.metrics import LATENCIES, PERCENTILES
from engineforge.loadgen.sweep import TABLE_FIGURES, SweepResult

COUNTS = ("requests", "completed", "errors", "error_rate", "duration_s", "busy_s", "request_throughput",
          "output_tokens_per_s", "total_tokens_per_s")
OTHER_PREFIXES = ("gpu_", "roofline_", "token_agreement", "exact_match_rate", "logprob_")


def _number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if float(value).is_integer() and abs(value) < 1e9:
        return f"{int(value)}"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def summary_tables(figures: dict[str, float]) -> list[Table]:
    """Counts and throughput; the latency grid (mean/p50/p90/p99 in ms); GPU, roofline, accuracy."""
    counts = Table(title="run", title_justify="left", show_header=False)
    counts.add_column("figure")
    counts.add_column("value", justify="right")
    for name in COUNTS:
        if name in figures:
            counts.add_row(name, _number(figures[name]))
    grid = Table(title="latency (ms)", title_justify="left")
    grid.add_column("")
    stats = ("mean", *(f"p{p}" for p in PERCENTILES))
    for stat in stats:
        grid.add_column(stat, justify="right")
    for name in LATENCIES:
        grid.add_row(name, *(_number(figures.get(f"{name}_ms_{stat}")) for stat in stats))
    tables = [counts, grid]
    other = {k: v for k, v in figures.items() if k.startswith(OTHER_PREFIXES)}
    if other:
        extra = Table(title="hardware and accuracy", title_justify="left", show_header=False)
        extra.add_column("figure")
        extra.add_column("value", justify="right")
        for name, value in other.items():
            extra.add_row(name, _number(value))
        tables.append(extra)
    return tables


def sweep_table(sweep: SweepResult) -> Table:
    table = Table(title="sweep", title_justify="left")
    table.add_column("concurrency", justify="right")
    for name in TABLE_FIGURES:
        table.add_column(name, justify="right")
    for row in sweep.table():
        table.add_row(*(_number(row[name]) for name in ("concurrency", *TABLE_FIGURES)))
    return table
