import json
import os
from pathlib import Path

import typer
from rich.console import Console

from engineforge.errors import UserError


def command(
    experiment: str = typer.Argument(..., help="MLflow experiment (a sweep recipe's name, or its tracking.experiment)."),
    runs: list[str] = typer.Option([], "--runs", help="Compare these runs (variant children or any runs); default: the newest sweep's variants."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
    out: Path = typer.Option(Path("."), "--out", help="Directory for EXPERIMENT-pareto.png and EXPERIMENT-prediction.png."),
    objective: str | None = typer.Option(None, "--objective", help="Default: the sweep's objective (output_tokens_per_s_per_gpu)."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="Default $MLFLOW_TRACKING_URI or sqlite:///mlflow.db."),
) -> int:
    """Compare a sweep's variants from MLflow's records: the table, the champion, the Pareto and prediction plots."""
    from engineforge.tracking import mlflow_runs
    from engineforge.recipe.schema import OBJECTIVES
    from engineforge.sweep import plots
    from engineforge.sweep.champion import decide
    from engineforge.tracking.mlflow_tags import OBJECTIVE_TAG
    from engineforge.sweep.records import latest_sweep, record_of, sweep_records
    from engineforge.sweep.table import COLUMNS

    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or mlflow_runs.DEFAULT_URI
    if objective is not None and objective not in OBJECTIVES:
        raise UserError(f"--objective {objective}: must be one of {', '.join(OBJECTIVES)}")
    client = mlflow_runs.client(uri)
    parent = None
    if runs:
        records = [record_of(_run(client, run_id), uri) for run_id in runs]
    else:
        parent = latest_sweep(uri, experiment)
        records = sweep_records(mlflow_runs.TrackedRun(uri, parent))
    chosen_objective = objective or (client.get_run(parent).data.tags.get(OBJECTIVE_TAG) if parent else None) or OBJECTIVES[0]
    verdict = decide(records, chosen_objective)
    name = verdict.name
    out.mkdir(parents=True, exist_ok=True)
    written = [plots.pareto(records, name, out / f"{experiment}-pareto.png", experiment),
               plots.prediction(records, out / f"{experiment}-prediction.png")]
    written = [path for path in written if path is not None]  # no prediction plot without predictions
    if as_json:
        print(json.dumps({
            "experiment": experiment, "sweep_run_id": parent, "objective": chosen_objective, "champion": name,
            "verdict": verdict.kind, "tied": verdict.tied,
            "variants": [{"variant": r.name, "run_id": r.run_id, "gpus": r.gpus, "gates": r.gates, "n": r.n,
                          "predicted_gpu": r.predicted_gpu,
                          "figures": {figure: _finite(r.interval(figure).mean) for figure in COLUMNS.values()},
                          "ci95": {figure: r.interval(figure).half_width for figure in COLUMNS.values()}} for r in records],
            "plots": [str(path) for path in written],
        }, indent=2))
        return 0
    console = Console(highlight=False, soft_wrap=True)
    console.print(verdict.table(records), markup=False)
    console.print(f"plots: {', '.join(str(path) for path in written)}", markup=False)
    return 0


def _run(client, run_id: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException:
        raise UserError(f"--runs {run_id}: no such MLflow run; list a sweep's runs with `engineforge compare EXPERIMENT --json`") from None


def _finite(value: float) -> float | None:
    return value if value == value and abs(value) != float("inf") else None
