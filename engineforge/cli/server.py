import typer

from engineforge.cli.local_service import Action, act


def command(action: Action = typer.Argument(..., help="start, stop or status")) -> int:
    """The local Prefect server `engineforge run` uses when PREFECT_API_URL is unset (state in .engineforge/prefect)."""
    from engineforge.orchestration import local_prefect

    return act(action, "Prefect server",
               start=lambda: f"Prefect API at {local_prefect.ensure_api()} (UI: same address without /api)",
               stop=local_prefect.stop, running_url=local_prefect.running_api_url)
