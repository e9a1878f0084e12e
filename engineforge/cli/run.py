import importlib
import json
import logging
import os
import sys
import threading
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from engineforge.cli.progress_view import STATUS_STYLE, LiveStages
from engineforge.errors import RunFailed, StageFailed


def command(
    recipe: Path = typer.Argument(..., help="Recipe YAML file."),
    refresh: list[str] = typer.Option([], "--refresh", metavar="STAGE", help="Rerun a stage even if cached: download, quantize, shard, build, validate, package, register or all."),
    as_json: bool = typer.Option(False, "--json", help="Print the run summary as JSON (for scripts)."),
    store: Path = typer.Option(None, "--store", help="Content-addressed store (default $ENGINEFORGE_STORE or .engineforge/store)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Resolve the recipe and print each stage's commands and generated files; run nothing (with --json: as JSON)."),
    ephemeral: bool = typer.Option(False, "--ephemeral-prefect", help="Use a temporary Prefect server for this run only, instead of the local one `engineforge server` keeps (ignored when PREFECT_API_URL is set)."),
) -> int:
    """Run a recipe end to end: download, shard, build, validate, package, register."""
    console = Console(stderr=as_json, highlight=False)
    user_api = bool(os.environ.get("PREFECT_API_URL"))  # a server of the user's: sweeps use its deployments
    api = imports = None
    if not dry_run:  # the Prefect API (mostly waiting on a server) gets ready while the recipe is checked
        console.print(f"engineforge run {recipe}: checking the recipe; Prefect API starting", markup=False, soft_wrap=True)
        _quiet_libraries()
        api = _Background(_prepare_api, ephemeral)
        # Importing MLflow takes seconds; do it while Prefect's API starts instead of after.
        imports = threading.Thread(target=_import_mlflow, daemon=True)
        imports.start()
    try:
        return _run(recipe, refresh, as_json, store, dry_run, user_api, console, api, imports)
    except KeyboardInterrupt:
        _interrupted(console)
        raise typer.Exit(130) from None


def _run(recipe: Path, refresh, as_json: bool, store, dry_run: bool, user_api: bool, console: Console, api,
         imports: threading.Thread | None = None) -> int:
    from engineforge.recipe_checks import check_recipe_file
    from engineforge.stages.pipeline import NAMES  # imports every runtime: after the first line

    unknown = sorted(set(refresh) - set(NAMES) - {"all"})
    if unknown:
        raise typer.BadParameter(f"unknown stage {', '.join(unknown)}; choose from {', '.join(NAMES)} or all", param_hint="--refresh")
    loaded = check_recipe_file(recipe)  # what `engineforge validate` checks exits 2 before anything starts
    if loaded.sweep is not None:  # every variant's commands, or every variant checked before anything starts
        from engineforge.cli import sweep_output

        if dry_run:
            return sweep_output.dry_run(loaded, recipe, as_json)
        sweep_output.check(loaded, recipe)
    if dry_run:
        from engineforge.stages.dry_run import dry_run as plan_stages
        from engineforge.stages.dry_run import render

        planned = plan_stages(loaded, recipe.resolve().parent)
        print(json.dumps(planned, indent=2)) if as_json else render(planned, Console(highlight=False, soft_wrap=True))
        return 0
    api.wait()  # before Prefect is imported: it reads its settings then
    # MLflow's import done before this thread imports Prefect: both import SQLAlchemy's ORM, and one module
    # imported by two threads at once can fail as "partially initialized" (seen on a loaded 2-core machine).
    imports.join()
    from engineforge.stages import progress
    from engineforge.orchestration import gpu_slots, prefect_api
    from flows.model_to_deployment import model_to_deployment

    gpu_slots.ensure_declared(loaded)  # this host's GPU slots, unless a worker declared them
    if loaded.sweep is not None:  # the flow `sweep`: one child run per variant
        return sweep_output.run_sweep(recipe, refresh, store, as_json, sweep_output.sweep_deployment(user_api))

    listener = LiveStages(console)
    progress.subscribe(listener)
    api_lost = False
    try:
        summary = model_to_deployment(
            recipe_yaml=recipe.read_text(),
            recipe_origin=str(recipe),
            base_dir=str(recipe.resolve().parent),
            refresh=refresh,
            store_root=str(store.resolve()) if store else None,
        )
    except KeyboardInterrupt:  # the flow marked the run KILLED and told the listener where it is recorded
        listener.close()  # the spinners gone before the line
        _interrupted(console, listener.stopped)
        raise typer.Exit(130) from None
    except RunFailed as failure:  # the flow concluded a failed run: its summary is the report
        summary = failure.summary
    except Exception as error:  # Prefect could not record the end: the run's own record still tells it
        summary = listener.summary
        if summary is None or not prefect_api.is_unreachable(error):
            raise
        api_lost = True
    finally:
        listener.close()
        progress.unsubscribe(listener)
    _report(summary, console, as_json)  # a failed row holds the whole cause (a gate table)
    failed = StageFailed(summary["failed_stage"], summary["error"].splitlines()[0]) if summary["failed_stage"] else None
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    if api_lost or listener.notices:
        errors.print(prefect_api.went_away_line(), markup=False)
    if api_lost:
        _exit_now(failed, errors)
    if failed:
        raise failed from None
    return 0


def _exit_now(failed: StageFailed | None, errors: Console) -> None:
    """Exit without Prefect's at-exit drains: its services would spend minutes sending, one by one,
    what they queued for an API that is gone (measured: over 3 minutes after the MLflow run ended)."""
    if failed is not None:
        errors.print(f"error: {failed}", markup=False)  # as cli.app.main prints it
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(failed.exit_code if failed else 0)


class _Background:
    """`target` in a daemon thread, so that a bad recipe's exit does not wait for it; `wait` raises
    what it raised."""

    def __init__(self, target, *args):
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._call, args=(target, *args), daemon=True)
        self.thread.start()

    def _call(self, target, *args) -> None:
        try:
            target(*args)
        except BaseException as error:  # handed to the main thread by `wait`
            self.error = error

    def wait(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


def _prepare_api(ephemeral: bool) -> None:
    from engineforge.orchestration import local_prefect

    local_prefect.prepare_api(ephemeral)


def _interrupted(console: Console, stopped: tuple[str, str | None] | None = None) -> None:
    """Ctrl-C: one line; the MLflow run is KILLED (by the flow, which said so: `stopped`, its MLflow run
    and flow run ids) and the Prefect flow run CANCELLED here, after Prefect's own end of it."""
    where = ""
    if stopped is not None:
        mlflow_run_id, flow_run_id = stopped
        if flow_run_id:
            from engineforge.orchestration import run_artifacts

            run_artifacts.mark_cancelled(flow_run_id)
        where = f": MLflow run {mlflow_run_id} KILLED, Prefect flow run {flow_run_id} CANCELLED"
    console.print(f"interrupted{where}; finished stages stay in the store", markup=False)


def _import_mlflow() -> None:
    for module in ("mlflow.tracking", "mlflow.store.tracking.sqlalchemy_store"):
        importlib.import_module(module)


def _quiet_libraries() -> None:
    # The CLI shows its own progress and one-line errors; Prefect's console lines (and failed
    # tasks' tracebacks, still sent to the Prefect API) would drown them.
    # The level stays INFO so that flow and task run logs reach the API (the run's Logs tab).
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    # With the API gone, Prefect's own services log each event they could not send, and its log
    # worker writes "--- Error logging to API ---" to stderr unless logging.raiseExceptions is off:
    # the run says it once, in one line of its own.
    os.environ.setdefault("PREFECT_INTERNAL_LOGGING_LEVEL", "CRITICAL")
    logging.raiseExceptions = False
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    for name in ("mlflow", "alembic"):  # "Creating initial MLflow database tables..." and migrations
        logging.getLogger(name).setLevel(logging.WARNING)


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
