import typer

from engineforge.cli.local_service import Action, act


def command(
    action: Action = typer.Argument(..., help="start, stop or status"),
    port: int = typer.Option(5000, help="Loopback port for `start`."),
) -> int:
    """A local `mlflow server` (SQLite, proxied artifacts; state in .engineforge/tracking): set MLFLOW_TRACKING_URI to its URL."""
    from engineforge.artifacts import server

    def start() -> str:
        url = server.start(port)
        return (f"MLflow tracking server at {url} (artifacts under {server.home() / 'artifacts'}); "
                f"export MLFLOW_TRACKING_URI={url}")

    return act(action, "tracking server", start=start, stop=server.stop, running_url=server.running_url)
