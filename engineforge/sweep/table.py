"""The comparison table of a sweep: one row per variant, in the shape of TensorRT-LLM's performance table.

Rows are built from what each variant's MLflow child run recorded (its metrics and its gates tag),
so the flow that just ran the sweep and `engineforge compare` later print the same table.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

from engineforge.measure.gates import NO_GATES
from engineforge.measure.intervals import CI_SUFFIX, Interval, interval
from engineforge.predict import PREDICTED

PP_FOOTNOTE = ("Predicted: NVIDIA AIConfigurator's performance model, which treats pipeline parallelism as an "
               "ideal linear speed-up (no bubbles), so it flatters PP layouts.")

INTERVAL_FOOTNOTE = ("a ± b: the mean of n repeats and the half width of its 95 % confidence interval (Student's t); "
                     "the true mean lies in [a - b, a + b] with 95 % confidence. Overlapping intervals mean the "
                     "difference may be noise.")
# A p99 over fewer requests than this is about the slowest one, not a tail estimate: the table says so.
STABLE_P99_REQUESTS = 100
REPEATS_SUFFIX = "_repeats"  # csv: each repeat's value of a figure

# column header -> figure name (derived figures are computed in VariantRecord.figure)
COLUMNS = {
    "GPUs": "gpus",
    "output tok/s": "output_tokens_per_s",
    "tok/s per GPU": "output_tokens_per_s_per_gpu",
    "tok/s per user": "tokens_per_s_per_user",
    "TTFT p50 ms": "ttft_ms_p50",
    "TTFT p99 ms": "ttft_ms_p99",
    "TPOT p50 ms": "tpot_ms_p50",
    "ITL p50 ms": "itl_ms_p50",
    "E2E p50 ms": "e2e_ms_p50",
    # bursty streams: reads that brought text per request, output tokens per such read (about 1 token by token)
    "chunks per request": "chunks_per_request",
    "tokens per chunk": "tokens_per_chunk",
    "GPU util %": "gpu_util_pct_mean",
    "roofline fraction": "roofline_fraction",
    "predicted tok/s per GPU": PREDICTED + "output_tokens_per_s_per_gpu",
    "prediction error": "prediction_error",
}
NOT_REPEATED = ("gpus", "prediction_error")
# Figures a run records per repeat (the rest of COLUMNS derive from these, or are predictions: one value each).
REPEATED_FIGURES = ("output_tokens_per_s", "tokens_per_s_per_user", "ttft_ms_p50", "ttft_ms_p99", "tpot_ms_p50", "itl_ms_p50",
                    "e2e_ms_p50", "chunks_per_request", "tokens_per_chunk", "gpu_util_pct_mean", "roofline_fraction")


@dataclass
class VariantRecord:
    """What one variant's run left: its figures (measured and predicted) and its gates' verdict."""

    name: str
    gpus: int
    figures: dict[str, float] = field(default_factory=dict)
    gates: str = "not measured"  # passed | failed | none (no gate set) | not measured (the run failed before its gates)
    run_id: str | None = None
    stages: dict[str, str] = field(default_factory=dict)  # stage -> ran | cached | skipped | failed
    predicted_gpu: str | None = None  # the GPU its predicted_* figures are for (the one its run ran on)
    repeats: list[dict[str, float]] = field(default_factory=list)  # each repeat's figures; empty: one measurement

    @property
    def n(self) -> int:
        return max(len(self.repeats), 1)

    def interval(self, name: str) -> Interval:
        """A figure over the repeats (derived ones derived per repeat); one value without repeats, or for
        what is not measured per repeat (the GPU count, predictions)."""
        if self.repeats and name not in NOT_REPEATED and not name.startswith(PREDICTED):
            per_repeat = interval(VariantRecord(self.name, self.gpus, self.figures | figures).figure(name)
                                  for figures in self.repeats)
            if per_repeat.n:
                return per_repeat
        return interval([self.figure(name)])

    @property
    def passed(self) -> bool:
        """Nothing failed: every gate passed, or the recipe sets none (a gateless sweep still has a champion)."""
        return self.gates in ("passed", NO_GATES)

    def figure(self, name: str) -> float:
        """A recorded figure, or one derived from them; NaN when it cannot be known."""
        if name == "gpus":
            return float(self.gpus)
        if name in self.figures:
            return float(self.figures[name])
        if name.endswith("_per_gpu"):
            return self.figure(name.removesuffix("_per_gpu")) / max(self.gpus, 1)
        if name == "prediction_error":  # signed, relative to the measurement
            measured = self.figure("output_tokens_per_s_per_gpu")
            return (self.figure(PREDICTED + "output_tokens_per_s_per_gpu") - measured) / measured
        return math.nan


def minimises(objective: str) -> bool:
    """Latencies are better low; rates better high."""
    return "_ms_" in objective


def rows(records: list[VariantRecord], champion: str | None) -> list[dict[str, str]]:
    table = []
    for record in records:
        row = {"variant": record.name + (" (champion)" if record.name == champion else "")}
        row |= {header: _shown(name, record.interval(name)) for header, name in COLUMNS.items()}
        row["prediction error"] = _prediction_error(record)
        row["n"] = str(record.n)
        row["requests"] = _requests(record)
        row["predicted for"] = record.predicted_gpu or "-"
        row["gates"] = record.gates
        table.append(row)
    return table


def to_csv(records: list[VariantRecord], champion: str | None) -> str:
    """Machine-readable: per figure its mean, the 95 % interval's half width (`<figure>_ci95`, empty below two
    repeats) and each repeat's value (`<figure>_repeats`, `;`-separated), full precision."""
    figures = [name for name in COLUMNS.values() if name != "gpus"]
    names = ["variant", "gpus", "n", *(f"{name}{suffix}" for name in figures for suffix in ("", CI_SUFFIX, REPEATS_SUFFIX)),
             "predicted_gpu", "gates", "champion", "run_id"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for record in records:
        values = {}
        for name in figures:
            stats = record.interval(name)
            values |= {name: _raw(stats.mean), f"{name}{CI_SUFFIX}": _raw(stats.half_width),
                       f"{name}{REPEATS_SUFFIX}": ";".join(_raw(v) for v in stats.values) if stats.n > 1 else ""}
        writer.writerow({"variant": record.name, "gpus": record.gpus, "n": record.n, **values,
                         "predicted_gpu": record.predicted_gpu or "", "gates": record.gates,
                         "champion": record.name == champion, "run_id": record.run_id or ""})
    return out.getvalue()


def to_markdown(records: list[VariantRecord], champion: str | None, objective: str, verdict: str,
                notes: list[str] = ()) -> str:
    """The table, then the objective and the verdict (champion.Verdict.sentence) and the notes."""
    table = rows(records, champion)
    headers = list(table[0]) if table else ["variant"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row[h] for h in headers) + " |" for row in table]
    lines += ["", f"Objective: {objective} ({'lowest' if minimises(objective) else 'highest'} mean wins among variants "
              f"passing every gate); {verdict}."]
    if any(record.n > 1 for record in records):
        lines += ["", INTERVAL_FOOTNOTE]
    few = [f"{record.name} ({_requests(record)})" for record in records
           if record.figure("completed") < STABLE_P99_REQUESTS]  # NaN (not measured) compares False
    if few:
        lines += ["", f"p99 from fewer than {STABLE_P99_REQUESTS} requests per measurement is about the slowest "
                      f"request, not a stable tail: {', '.join(few)}."]
    if any(math.isfinite(r.figure(COLUMNS["predicted tok/s per GPU"])) for r in records):
        lines += ["", PP_FOOTNOTE]
    lines += ["", *notes] if notes else []
    return "\n".join(lines) + "\n"


def _shown(name: str, stats: Interval) -> str:
    """`684.0 ± 120.0`: the mean and the 95 % interval's half width (none with one value)."""
    width = stats.half_width
    if width is None:
        return _cell(name, stats.mean)
    return f"{_cell(name, stats.mean)} ± {_cell(name, width)}"


def _requests(record: VariantRecord) -> str:
    """Requests completed per measurement (what every percentile in the row is over), `-` when not measured."""
    completed = record.figure("completed")
    return f"{completed:.0f}" if math.isfinite(completed) else "-"


def _prediction_error(record: VariantRecord) -> str:
    """The prediction against the measurement: `+10%`, and with repeats whether it falls inside the
    measured 95 % interval or how far outside its nearer end (`+25%, 12% outside`)."""
    error = _cell("prediction_error", record.figure("prediction_error"))
    measured = record.interval("output_tokens_per_s_per_gpu")
    predicted = record.figure(PREDICTED + "output_tokens_per_s_per_gpu")
    if error == "-" or measured.half_width is None:
        return error
    if measured.covers(predicted):
        return f"{error}, inside"
    nearer = measured.high if predicted > measured.high else measured.low
    return f"{error}, {abs(predicted - nearer) / nearer:.0%} outside"


def _cell(name: str, value: float) -> str:
    if not math.isfinite(value):
        return "-"
    if name == "gpus":
        return str(int(value))
    if name == "prediction_error":
        return f"{value:+.0%}"
    if name == "roofline_fraction":
        return f"{value:.2f}"
    return f"{value:,.1f}" if abs(value) < 1e4 else f"{value:,.0f}"


def _raw(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else repr(round(value, 6))
