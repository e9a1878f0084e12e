"""start | stop | status of a background server engineforge runs on this machine (`engineforge server`,
`engineforge tracking`): one shape for both, exit 1 from `status` when it is not running."""

from collections.abc import Callable
from enum import Enum

from rich.console import Console


class Action(str, Enum):
    start = "start"
    stop = "stop"
    status = "status"


def act(action: Action, name: str, start: Callable[[], str], stop: Callable[[], bool],
        running_url: Callable[[], str | None]) -> int:
    """`start` returns the line to print; `stop` whether something was stopped."""
    console = Console(highlight=False)
    if action is Action.start:
        console.print(start())
    elif action is Action.stop:
        console.print("stopped" if stop() else f"no local {name} was running")
    else:
        url = running_url()
        console.print(f"running at {url}" if url else "not running")
        return 0 if url else 1
    return 0
