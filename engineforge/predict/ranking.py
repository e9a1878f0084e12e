"""Layouts ranked by AIConfigurator's predicted throughput per GPU, under the recipe's TTFT/TPOT targets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engineforge.predict.aiconfigurator import BACKEND, BACKEND_VERSION, NoPrediction, Prediction, predict

PP_NOTE = "AIConfigurator models pipeline parallelism as an ideal linear speed-up (no pipeline bubbles)."


@dataclass
class RankedLayout:
    label: str
    tp: int
    pp: int
    outcome: Prediction | NoPrediction
    meets_targets: bool | None  # None: no prediction to judge

    @property
    def gpus(self) -> int:
        return self.tp * self.pp


def rank(layouts: list[tuple[str, Any]], model_config: dict[str, Any], gpu: str) -> list[RankedLayout]:
    """Each (label, recipe) predicted; those meeting the recipe's targets first, by tok/s per GPU."""
    ranked = []
    for label, recipe in layouts:
        outcome = predict(recipe, model_config, gpu)
        gates = recipe.validate_.gates
        meets = None if isinstance(outcome, NoPrediction) else (
            (gates.max_ttft_ms_p99 is None or outcome.ttft_ms <= gates.max_ttft_ms_p99)
            and (gates.max_tpot_ms_p50 is None or outcome.tpot_ms <= gates.max_tpot_ms_p50))
        ranked.append(RankedLayout(label, recipe.parallel.tensor, recipe.parallel.pipeline, outcome, meets))
    return sorted(ranked, key=lambda r: (r.meets_targets is None, r.meets_targets is False,
                                         -getattr(r.outcome, "output_tokens_per_s_per_gpu", 0.0)))


def to_json(ranked: list[RankedLayout], gpu: str) -> dict[str, Any]:
    return {
        "predictor": {"name": "aiconfigurator", "backend": BACKEND, "backend_version": BACKEND_VERSION, "gpu": gpu},
        "layouts": [{"layout": r.label, "tp": r.tp, "pp": r.pp, "gpus": r.gpus, "meets_targets": r.meets_targets,
                     **({"no_prediction": r.outcome.reason} if isinstance(r.outcome, NoPrediction)
                        else {"predicted": r.outcome.figures(), "predicted_with": r.outcome.provenance()})}
                    for r in ranked],
        "note": PP_NOTE,
    }


def render(ranked: list[RankedLayout], gpu: str, console) -> None:
    from rich.table import Table

    table = Table(title=f"AIConfigurator predictions on {gpu} (TensorRT-LLM {BACKEND_VERSION} database), best first",
                  title_justify="left")
    for column in ("layout", "GPUs", "TTFT ms", "TPOT ms", "tok/s", "tok/s per GPU", "tok/s per user", "targets"):
        table.add_column(column, justify="left" if column in ("layout", "targets") else "right")
    missing = []
    for r in ranked:
        if isinstance(r.outcome, NoPrediction):
            missing.append(f"{r.label}: no prediction: {r.outcome.reason}")
            continue
        p = r.outcome
        table.add_row(r.label, str(r.gpus), f"{p.ttft_ms:.1f}", f"{p.tpot_ms:.2f}", f"{p.output_tokens_per_s:,.0f}",
                      f"{p.output_tokens_per_s_per_gpu:,.1f}", f"{p.tokens_per_s_per_user:.1f}",
                      "met" if r.meets_targets else "missed")
    console.print(table)
    for line in missing:
        console.print(line, markup=False)
    console.print(f"Note: {PP_NOTE}", markup=False)
