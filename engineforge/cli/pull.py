from pathlib import Path

import typer
from rich.console import Console


def command(
    model: str = typer.Argument(..., help="NAME, NAME@ALIAS (candidate, champion) or NAME/VERSION"),
    to: Path = typer.Option(..., "--to", help="New or empty directory for the files."),
) -> int:
    """Download a registered model version's files from the tracking server, checked against its MANIFEST.json and
    that against the digest recorded when it was logged (the tracking database, the registering run's lock file)."""
    import os

    from engineforge.tracking import mlflow_runs
    from engineforge.artifacts.pull import pull

    uri = os.environ.get("MLFLOW_TRACKING_URI") or mlflow_runs.DEFAULT_URI
    mlflow_runs.probe(uri)
    version = pull(uri, model, to)
    Console(highlight=False).print(f"{version.name} version {version.version} ({version.source}) verified in {to.resolve()}")
    return 0
