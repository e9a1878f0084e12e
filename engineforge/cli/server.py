from enum import Enum

import typer
from rich.console import Console


class Action(str, Enum):
    start = "start"
    stop = "stop"
    status = "status"


def command(action: Action = typer.Argument(..., help="start, stop or status")) -> int:
    """The local Prefect server `engineforge run` uses when PREFECT_API_URL is unset (state in .engineforge/prefect)."""
    from engineforge.orchestration import local_prefect

    console = Console(highlight=False)
    if action is Action.start:
        console.print(f"Prefect API at {local_prefect.ensure_api()} (UI: same address without /api)")
    elif action is Action.stop:
        console.print("stopped" if local_prefect.stop() else "no local Prefect server was running")
    else:
        url = local_prefect.running_api_url()
        console.print(f"running at {url}" if url else "not running")
        return 0 if url else 1
    return 0
