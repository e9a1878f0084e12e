import os
from pathlib import Path

import typer
from rich.console import Console


def command(
    store: Path = typer.Option(None, "--store", help="Content-addressed store (default $ENGINEFORGE_STORE or .engineforge/store)."),
) -> int:
    """Probe MLflow and the Prefect API; close runs left RUNNING by dead processes on this host; sweep
    dead writers' temporary store directories. Exit 1 when a service does not answer."""
    from engineforge.errors import UserError
    from engineforge.orchestration import local_prefect
    from engineforge.orchestration.stale_runs import close_stale
    from engineforge.artifacts.store import Store
    from engineforge.tracking.mlflow_runs import DEFAULT_URI, probe

    console = Console(highlight=False, soft_wrap=True)
    uri = os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI
    api = os.environ.get("PREFECT_API_URL") or local_prefect.running_api_url()
    answered = {}
    for name, address, check in (("MLflow", uri, probe), ("Prefect", api, local_prefect.probe)):
        try:
            if address:
                check(address)
            answered[name] = bool(address)
            console.print(f"ok      {name} {address or '(no server running; engineforge run starts one)'}", markup=False)
        except UserError as error:
            answered[name] = False
            console.print(f"failed  {error}", markup=False)
    if answered["MLflow"]:
        if answered["Prefect"]:
            os.environ["PREFECT_API_URL"] = api
        for line in close_stale(uri, prefect=answered["Prefect"]):
            console.print(f"closed  {line}", markup=False)
    for path in Store(store.resolve() if store else None).sweep():
        console.print(f"removed {path} (its writer is dead)", markup=False)
    return 0 if answered["MLflow"] and (answered["Prefect"] or not api) else 1
