"""Stage progress events for whoever shows them (the CLI's live table, tests).

Listeners are process-wide because Prefect runs tasks in worker threads of the same process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from engineforge.stage_result import StageResult


class Listener(Protocol):
    def stage_started(self, stage: str, key: str | None) -> None: ...
    def stage_finished(self, result: "StageResult") -> None: ...


_listeners: list[Listener] = []


def subscribe(listener: Listener) -> None:
    _listeners.append(listener)


def unsubscribe(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def started(stage: str, key: str | None = None) -> None:
    for listener in list(_listeners):
        listener.stage_started(stage, key)


def advanced(stage: str, fraction: float) -> None:
    """A long stage's share done (0..1), for listeners that show it (their optional `stage_advanced`)."""
    for listener in list(_listeners):
        method = getattr(listener, "stage_advanced", None)
        if method is not None:
            method(stage, fraction)


def counted(stage: str, done: int, total: int | None, unit: str) -> None:
    """What a stage has done so far in its own unit (requests answered, bytes downloaded), for
    listeners that show it (their optional `stage_counted`)."""
    for listener in list(_listeners):
        method = getattr(listener, "stage_counted", None)
        if method is not None:
            method(stage, done, total, unit)


def linked(label: str, url: str) -> None:
    """Where to follow the run (its Prefect flow run, its MLflow run), for listeners that show it
    (their optional `run_linked`)."""
    for listener in list(_listeners):
        method = getattr(listener, "run_linked", None)
        if method is not None:
            method(label, url)


def finished(result: "StageResult") -> None:
    for listener in list(_listeners):
        listener.stage_finished(result)


def noticed(line: str) -> None:
    """Something the run went on without (the Prefect API gone), for listeners that show it (their
    optional `run_noticed`)."""
    for listener in list(_listeners):
        method = getattr(listener, "run_noticed", None)
        if method is not None:
            method(line)


def concluded(summary: dict) -> None:
    """The run's summary as the flow ends, before Prefect records the end, for listeners that keep it
    (their optional `run_concluded`): the outcome survives a Prefect API that is gone by then."""
    for listener in list(_listeners):
        method = getattr(listener, "run_concluded", None)
        if method is not None:
            method(summary)
