"""The sweep's two plots (matplotlib's Agg canvas, no display): the Pareto frontier and predicted vs measured."""

from __future__ import annotations

import math
from pathlib import Path

from engineforge.predict import PREDICTED
from engineforge.sweep.table import VariantRecord

THROUGHPUT = "output_tokens_per_s_per_gpu"


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # no pyplot: no global state, no display backend

    return Figure(figsize=(width, height), layout="constrained")


def frontier(points: list[tuple[float, float]], lower_x_better: bool) -> list[tuple[float, float]]:
    """The points no other point beats on both axes (y: higher is better), sorted by x."""
    sign = 1 if lower_x_better else -1
    best = []
    for x, y in sorted(points, key=lambda p: (sign * p[0], -p[1])):
        if not best or y > best[-1][1]:
            best.append((x, y))
    return sorted(best)


def pareto(records: list[VariantRecord], champion: str | None, path: Path, recipe: str,
           ttft_gate_ms: float | None = None) -> Path:
    """Throughput per GPU against TTFT p99 (left) and against tokens/s per user (right); the means of the
    repeats, with their 95 % intervals as error bars where a variant was measured more than once. Titled
    with the recipe, each variant's requests per measurement and the date; the TTFT p99 gate drawn where
    the recipe sets one; a variant that failed a gate is a red cross, off the frontier."""
    figure = pareto_figure(records, champion, recipe, ttft_gate_ms)
    return _save(figure, path)


def pareto_figure(records: list[VariantRecord], champion: str | None, recipe: str, ttft_gate_ms: float | None):
    figure = _figure(11, 4.8)
    figure.suptitle(pareto_title(records, recipe))
    panels = zip(figure.subplots(1, 2), (("ttft_ms_p99", "TTFT p99 (ms)", True, ttft_gate_ms),
                                         ("tokens_per_s_per_user", "tokens/s per user", False, None)))
    for axis, (x_name, x_label, lower_better, gate) in panels:
        measured = [(r, r.interval(x_name), r.interval(THROUGHPUT)) for r in records]
        measured = [(r, x, y) for r, x, y in measured if math.isfinite(x.mean) and math.isfinite(y.mean)]
        if not measured:
            axis.text(0.5, 0.5, f"no variant has {x_label} measured", ha="center", va="center", transform=axis.transAxes)
        for record, x, y in measured:
            color = "tab:blue" if record.passed else "tab:red"
            axis.errorbar([x.mean], [y.mean], xerr=[x.half_width or 0.0], yerr=[y.half_width or 0.0], capsize=3,
                          marker="o" if record.passed else "x", color=color, ecolor=color, alpha=0.9)
            axis.annotate(record.name, (x.mean, y.mean), textcoords="offset points", xytext=(4, 4), fontsize="small")
        if any(not record.passed for record, _, _ in measured):
            axis.plot([], [], "x", color="tab:red", label="failed a gate")
        if gate is not None:
            axis.axvline(gate, color="tab:red", linestyle=":", label=f"gate: {x_label} at most {gate:g}")
        line = frontier([(x.mean, y.mean) for r, x, y in measured if r.passed], lower_better)
        if line:
            axis.plot(*zip(*line), "--", color="tab:blue", alpha=0.6, label="frontier (passing variants)")
        for record, x, y in measured:
            if record.name == champion:
                axis.scatter([x.mean], [y.mean], marker="*", s=300, color="gold", edgecolors="black", zorder=3,
                             label="champion")
        if any(x.half_width is not None or y.half_width is not None for _, x, y in measured):
            axis.plot([], [], "|-", color="grey", label="95% interval of the mean")
        axis.set(xlabel=x_label, ylabel="output tokens/s per GPU", title=f"throughput per GPU vs {x_label}")
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize="small")
    return figure


def pareto_title(records: list[VariantRecord], recipe: str) -> str:
    """`tiny-llama-sweep · requests per measurement: mbs1 16, mbs8 16 · 2026-12-06`: a tail from a few
    requests is a few points, so each variant's count is in view."""
    from datetime import date

    counts = ", ".join(f"{r.name} {r.figure('completed'):.0f}" for r in records if math.isfinite(r.figure("completed")))
    return f"{recipe} · requests per measurement: {counts or 'none measured'} · {date.today().isoformat()}"


def prediction(records: list[VariantRecord], path: Path) -> Path | None:
    """Predicted against measured throughput per GPU, with the line where they agree; None, and no file,
    when no variant has both (the table's notes say why: empty axes holding a sentence told nothing)."""
    # Each point names the GPU it was predicted for: a sweep's children may have run on different cards.
    pairs = [(f"{r.name} ({r.predicted_gpu})" if r.predicted_gpu else r.name, r.figure(THROUGHPUT),
              r.figure(PREDICTED + THROUGHPUT)) for r in records]
    pairs = [p for p in pairs if math.isfinite(p[1]) and math.isfinite(p[2])]
    if not pairs:
        return None
    figure = _figure(5.5, 5)
    axis = figure.subplots()
    for name, measured, predicted in pairs:
        axis.scatter([measured], [predicted], color="tab:purple")
        axis.annotate(name, (measured, predicted), textcoords="offset points", xytext=(4, 4), fontsize="small")
    top = max(max(m, p) for _, m, p in pairs) * 1.1
    axis.plot([0, top], [0, top], ":", color="grey", label="prediction = measurement")
    axis.legend(fontsize="small")
    axis.set(xlabel="measured output tokens/s per GPU", ylabel="predicted (AIConfigurator)",
             title="predicted vs measured")
    axis.grid(alpha=0.3)
    return _save(figure, path)


def _save(figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path
