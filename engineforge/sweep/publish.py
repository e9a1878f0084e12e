"""A sweep's outputs as files: the comparison table (csv and markdown) and the plots (the prediction plot
only where some variant was predicted)."""

from __future__ import annotations

from pathlib import Path

from engineforge.recipe.schema import Recipe
from engineforge.sweep import plots
from engineforge.sweep.champion import Verdict
from engineforge.sweep.table import VariantRecord, to_csv

ARTIFACT_DIR = "sweep"  # under the parent MLflow run
FILES = ("comparison.csv", "comparison.md", "pareto.png", "prediction.png")


def write_outputs(records: list[VariantRecord], verdict: Verdict, directory: Path, recipe: Recipe,
                  notes: list[str] = ()) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    csv_path, md_path, pareto_path, prediction_path = (directory / name for name in FILES)
    csv_path.write_text(to_csv(records, verdict.name))
    md_path.write_text(verdict.table(records, notes))
    plots.pareto(records, verdict.name, pareto_path, recipe.name, recipe.validate_.gates.max_ttft_ms_p99)
    predicted = plots.prediction(records, prediction_path)
    return [csv_path, md_path, pareto_path, *([predicted] if predicted else [])]


def critical_path_s(records: list[VariantRecord]) -> float:
    """The longest chain of stage work among variants that ran side by side: the most the sweep could
    take with zero orchestration cost."""
    chains = [sum(value for name, value in r.figures.items() if name.startswith("stage_") and name.endswith("_duration_s"))
              for r in records]
    return max(chains, default=0.0)
