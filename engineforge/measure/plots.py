"""Plots of a run or a sweep as PNG (matplotlib's Agg canvas: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engineforge.loadgen.metrics import latencies
from engineforge.loadgen.records import BenchResult
from engineforge.loadgen.sweep import SweepResult
from engineforge.measure.gates import GATE_FIGURES

CDF_PANELS = (("ttft", "TTFT"), ("tpot", "TPOT"), ("itl", "inter-token latency"), ("e2e", "end-to-end latency"))


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def latency_cdf(results: dict[str, BenchResult], path: str | Path, recipe: str | None = None, gates=None) -> Path:
    """Empirical CDFs of TTFT, TPOT, ITL and E2E latency; one line per labelled result; the recipe's latency
    gates (`recipe.schema.Gates`) drawn on their panels."""
    return _save(cdf_figure(results, recipe, gates), path)


def cdf_figure(results: dict[str, BenchResult], recipe: str | None = None, gates=None):
    figure = _figure(11, 7.5)
    figure.suptitle(cdf_title(results, recipe))
    axes = figure.subplots(2, 2).ravel()
    lines = gate_lines(gates)
    for axis, (name, title) in zip(axes, CDF_PANELS):
        for label, result in results.items():
            values = np.sort(latencies(result.records)[name]) * 1e3
            if values.size:
                axis.step(values, np.arange(1, values.size + 1) / values.size, where="post", label=label)
        if name in lines:
            _draw_gate(axis, *lines[name])
        axis.set(title=title, xlabel="ms", ylabel="fraction of requests" if name != "itl" else "fraction of gaps")
        axis.set_ylim(0, 1.02)
        axis.grid(alpha=0.3)
        if len(results) > 1 or name in lines:
            axis.legend(fontsize="small")
    return figure


def _draw_gate(axis, figure_name: str, target: float) -> None:
    """The target as a dotted red line; one far right of the measured curves is named in the legend but leaves
    the axis to the curves (a 12 s gate over 50 ms latencies would squeeze them into one line)."""
    percentile = figure_name.split("_ms_p")[1]
    low, high = axis.get_xlim()
    beyond = bool(axis.lines) and target > 1.5 * high
    label = f"gate: p{percentile} <= {target:g} ms" + (" (beyond the axis)" if beyond else "")
    axis.axvline(target, color="tab:red", linestyle=":", label=label)
    axis.axhline(int(percentile) / 100, color="tab:red", linestyle=":", linewidth=0.8, alpha=0.5)
    if beyond:
        axis.set_xlim(low, high)


def gate_lines(gates) -> dict[str, tuple[str, float]]:
    """Latency panel -> (the figure a set gate judges, its target in ms): the gates on a latency percentile."""
    lines = {}
    for field, (figure, _) in GATE_FIGURES.items():
        target = getattr(gates, field, None)
        if target is not None and "_ms_p" in figure:
            lines[figure.split("_ms_")[0]] = (figure, float(target))
    return lines


def cdf_title(results: dict[str, BenchResult], recipe: str | None = None) -> str:
    """What the curves are over: the recipe (else the served model), each result's request count (a tail from a
    few requests is a few points) and the day it was plotted."""
    from datetime import date

    sizes = {len(result.records) for result in results.values()}
    if len(results) > 1 and len(sizes) == 1:
        counts = f"{sizes.pop()} requests each ({', '.join(results)})"
    else:
        counts = ", ".join(f"{label}: {len(result.records)} requests" for label, result in results.items())
    # a run's recipe names its model (whose served path is a long store path); a bare benchmark names the model
    source = recipe or ", ".join(sorted({result.config.model for result in results.values()}))
    return " · ".join([source, counts, date.today().isoformat()])


def sweep_plot(sweep: SweepResult, path: str | Path) -> Path:
    """Throughput and p99 latencies against concurrency."""
    figure = _figure(11, 4.5)
    left, right = figure.subplots(1, 2)
    levels = sweep.levels
    left.plot(levels, sweep.figure("output_tokens_per_s"), "o-", label="output tokens/s")
    left.set(title="throughput", xlabel="concurrency", ylabel="output tokens/s", xscale="log", xticks=levels)
    left.set_xticklabels([str(level) for level in levels])
    requests = left.twinx()
    requests.plot(levels, sweep.figure("request_throughput"), "s--", color="tab:orange", label="requests/s")
    requests.set_ylabel("requests/s")
    left.legend(handles=left.lines + requests.lines, fontsize="small", loc="upper left")
    for name, label in (("ttft_ms_p99", "TTFT p99"), ("tpot_ms_p99", "TPOT p99"), ("e2e_ms_p99", "E2E p99")):
        right.plot(levels, sweep.figure(name), "o-", label=label)
    right.set(title="p99 latency", xlabel="concurrency", ylabel="ms", xscale="log", yscale="log", xticks=levels)
    right.set_xticklabels([str(level) for level in levels])
    right.legend(fontsize="small")
    for axis in (left, right):
        axis.grid(alpha=0.3)
    return _save(figure, path)


def _save(figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path
