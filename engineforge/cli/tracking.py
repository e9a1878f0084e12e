import typer
from rich.console import Console

from engineforge.cli.server import Action


def command(
    action: Action = typer.Argument(..., help="start, stop or status"),
    port: int = typer.Option(5000, help="Loopback port for `start`."),
) -> int:
    """A local `mlflow server` (SQLite, proxied artifacts; state in .engineforge/tracking): set MLFLOW_TRACKING_URI to its URL."""
    from engineforge.artifacts import server

    console = Console(highlight=False)
    if action is Action.start:
        url = server.start(port)
        console.print(f"MLflow tracking server at {url} (artifacts under {server.home() / 'artifacts'}); "
                      f"export MLFLOW_TRACKING_URI={url}")
    elif action is Action.stop:
        console.print("stopped" if server.stop() else "no local tracking server was running")
    else:
        url = server.running_url()
        console.print(f"running at {url}" if url else "not running")
        return 0 if url else 1
    return 0
