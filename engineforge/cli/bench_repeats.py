"""`engineforge bench --repeats N`: the same load N times against one endpoint, each figure reported as its mean,
95 % interval (Student's t), n and per-repeat values: the statistics the sweep uses (measure/intervals.py)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from rich.table import Table

from engineforge.loadgen.sweep import TABLE_FIGURES
from engineforge.measure.gates import GATE_FIGURES, evaluate_gates
from engineforge.measure.intervals import CI_SUFFIX, combine, conservative

# The figures the interval table shows (the sweep table's, and how many answered); the JSON keeps every figure.
SHOWN = (*TABLE_FIGURES, "completed", "errors")


def measure_repeats(measure_once: Callable[[], object], repeats: int, cooldown_s: float) -> list:
    """`repeats` measurements one after another, `cooldown_s` idle seconds between two (none after the last)."""
    measured = []
    for number in range(repeats):
        if number and cooldown_s:
            time.sleep(cooldown_s)
        measured.append(measure_once())
    return measured


def interval_json(measured: list) -> dict:
    """{"repeats": each run's JSON, "intervals": figure -> mean, <CI_SUFFIX>, n, values}."""
    return {
        "repeats": [(m.sweep or m.result).to_json() for m in measured],
        "intervals": {name: {"mean": stats.mean if stats.n else None, CI_SUFFIX.lstrip("_"): stats.half_width,
                             "n": stats.n, "values": list(stats.values)}
                      for name, stats in combine([m.figures for m in measured]).items()},
    }


def interval_table(measured: list) -> Table:
    stats = combine([m.figures for m in measured])
    table = Table(title=f"{len(measured)} repeats: mean ± 95 % interval (Student's t)")
    for column in ("figure", "mean ± ci95", "n", "per repeat"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for name in SHOWN:
        if name not in stats:
            continue
        figure = stats[name]
        if not figure.n:
            table.add_row(name, "not measured", "0", "")
            continue
        width = figure.half_width
        table.add_row(name, f"{figure.mean:,.2f}" + (f" ± {width:,.2f}" if width is not None else ""), str(figure.n),
                      ", ".join(f"{value:,.1f}" for value in figure.values))
    return table


def judged_gates(gates, measured: list):
    """The gates judged on the conservative end of each interval (a floor on the lower end, a ceiling on the
    upper end), as the validate stage's repeats are; the figure a repeat did not measure stays missing."""
    directions = {figure: op for figure, op in GATE_FIGURES.values()}
    means = {name: (stats.mean if stats.n else math.nan) for name, stats in combine([m.figures for m in measured]).items()}
    missing = {name: why for m in measured for name, why in m.missing.items()}
    return evaluate_gates(gates, conservative(means, [m.figures for m in measured], directions), missing)
