"""The comparison table of a sweep: one row per variant, in the shape of TensorRT-LLM's performance table.

Rows are built from what each variant's MLflow child run recorded (its metrics and its gates tag),
so the flow that just ran the sweep and `engineforge compare` later print the same table.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

from engineforge.predict import PREDICTED

PP_FOOTNOTE = ("Predicted: NVIDIA AIConfigurator's performance model, which treats pipeline parallelism as an "
               "ideal linear speed-up (no bubbles), so it flatters PP layouts.")

# column header -> figure name (derived figures are computed in VariantRecord.figure)
COLUMNS = {
    "GPUs": "gpus",
    "output tok/s": "output_tokens_per_s",
    "tok/s per GPU": "output_tokens_per_s_per_gpu",
    "tok/s per user": "tokens_per_s_per_user",
    "TTFT p50 ms": "ttft_ms_p50",
    "TTFT p99 ms": "ttft_ms_p99",
    "TPOT p50 ms": "tpot_ms_p50",
    "E2E p50 ms": "e2e_ms_p50",
    "GPU util %": "gpu_util_pct_mean",
    "roofline fraction": "roofline_fraction",
    "predicted tok/s per GPU": PREDICTED + "output_tokens_per_s_per_gpu",
    "prediction error": "prediction_error",
}


@dataclass
class VariantRecord:
    """What one variant's run left: its figures (measured and predicted) and its gates' verdict."""

    name: str
    gpus: int
    figures: dict[str, float] = field(default_factory=dict)
    gates: str = "not measured"  # passed | failed | not measured (the run failed before its gates)
    run_id: str | None = None
    stages: dict[str, str] = field(default_factory=dict)  # stage -> ran | cached | skipped | failed
    predicted_gpu: str | None = None  # the GPU its predicted_* figures are for (the one its run ran on)

    @property
    def passed(self) -> bool:
        return self.gates == "passed"

    def figure(self, name: str) -> float:
        """A recorded figure, or one derived from them; NaN when it cannot be known."""
        if name == "gpus":
            return float(self.gpus)
        if name in self.figures:
            return float(self.figures[name])
        if name.endswith("_per_gpu"):
            return self.figure(name.removesuffix("_per_gpu")) / max(self.gpus, 1)
        if name.endswith("tokens_per_s_per_user"):  # one user's decode rate
            tpot = self.figure(name.replace("tokens_per_s_per_user", "tpot_ms_p50"))
            return 1000.0 / tpot if tpot > 0 else math.nan  # 0: tokens came in one chunk, no per-token time seen
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
        row |= {header: _cell(name, record.figure(name)) for header, name in COLUMNS.items()}
        row["predicted for"] = record.predicted_gpu or "-"
        row["gates"] = record.gates
        table.append(row)
    return table


def to_csv(records: list[VariantRecord], champion: str | None) -> str:
    """Machine-readable: one column per figure name, full precision."""
    names = ["variant", *COLUMNS.values(), "predicted_gpu", "gates", "champion", "run_id"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for record in records:
        values = {name: _raw(record.figure(name)) for name in COLUMNS.values()}
        writer.writerow({"variant": record.name, **values, "predicted_gpu": record.predicted_gpu or "", "gates": record.gates,
                         "champion": record.name == champion, "run_id": record.run_id or ""})
    return out.getvalue()


def to_markdown(records: list[VariantRecord], champion: str | None, objective: str, notes: list[str] = ()) -> str:
    table = rows(records, champion)
    headers = list(table[0]) if table else ["variant"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row[h] for h in headers) + " |" for row in table]
    verdict = f"champion: **{champion}**" if champion else "champion: none (no variant passed every gate)"
    lines += ["", f"Objective: {objective} ({'lowest' if minimises(objective) else 'highest'} wins among variants "
              f"passing every gate; ties: fewer GPUs); {verdict}."]
    if any(math.isfinite(r.figure(COLUMNS["predicted tok/s per GPU"])) for r in records):
        lines += ["", PP_FOOTNOTE]
    lines += ["", *notes] if notes else []
    return "\n".join(lines) + "\n"


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


def _raw(value: float) -> str:
    return "" if not math.isfinite(value) else repr(round(value, 6))
