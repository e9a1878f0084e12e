import json
import os
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from engineforge.errors import StageFailed
from engineforge.recipe_file import load_recipe
from engineforge.run_context import STAGES

STATUS_STYLE = {"ran": "green", "cached": "cyan", "skipped": "yellow", "failed": "red"}


class LiveStages:
    """Prints each stage as it starts and ends (the flow runs in this process)."""

    def __init__(self, console: Console):
        self.console = console
        self.status = None

    def stage_started(self, stage, key):
        self.status = self.console.status(f"{stage} ...")
        self.status.start()

    def stage_finished(self, result):
        if self.status:
            self.status.stop()
        style = STATUS_STYLE.get(result.status, "white")
        self.console.print(f"[{style}]{result.status:>7}[/] {result.stage:<9} {result.duration_s:7.2f}s  {result.summary}")


def command(
    recipe: Path = typer.Argument(..., help="Recipe YAML file."),
    refresh: list[str] = typer.Option([], "--refresh", help=f"Rerun a stage even if cached: {', '.join(STAGES)} or all."),
    as_json: bool = typer.Option(False, "--json", help="Print the run summary as JSON (for scripts)."),
    store: Path = typer.Option(None, "--store", help="Content-addressed store (default $ENGINEFORGE_STORE or .engineforge/store)."),
) -> int:
    """Run a recipe end to end: download, shard, build, validate, package, register."""
    unknown = sorted(set(refresh) - set(STAGES) - {"all"})
    if unknown:
        raise typer.BadParameter(f"unknown stage {', '.join(unknown)}; choose from {', '.join(STAGES)} or all", param_hint="--refresh")
    load_recipe(recipe)  # recipe errors exit 2 before anything starts
    _quiet_prefect()
    from engineforge import progress
    from flows.model_to_deployment import model_to_deployment

    console = Console(stderr=as_json, highlight=False)
    listener = LiveStages(console)
    progress.subscribe(listener)
    try:
        summary = model_to_deployment(
            recipe_yaml=recipe.read_text(),
            recipe_origin=str(recipe),
            base_dir=str(recipe.resolve().parent),
            refresh=refresh,
            store_root=str(store.resolve()) if store else None,
        )
    except StageFailed as failure:
        summary = getattr(failure, "summary", None)
        if summary:
            _report(summary, console, as_json)
        raise
    finally:
        progress.unsubscribe(listener)
    _report(summary, console, as_json)
    return 0


def _quiet_prefect() -> None:
    # The CLI shows its own progress and one-line errors; Prefect's console lines (and failed
    # tasks' tracebacks, still sent to the Prefect API) would drown them.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _report(summary: dict, console: Console, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
        return
    table = Table(title=f"{summary['recipe']}: {summary['status']} in {summary['duration_s']:.1f}s")
    for column in ("stage", "status", "duration", "key output"):
        table.add_column(column)
    for stage in summary["stages"]:
        style = STATUS_STYLE.get(stage["status"], "white")
        table.add_row(stage["stage"], f"[{style}]{stage['status']}[/]", f"{stage['duration_s']:.2f}s", stage["summary"])
    if summary["failed_stage"]:
        table.add_row(summary["failed_stage"], "[red]failed[/]", "", summary["error"])
    console.print(table)
    mlflow = summary["mlflow"]
    console.print(f"MLflow run {mlflow['run_id']} in experiment {mlflow['experiment']} ({mlflow['tracking_uri']})")
