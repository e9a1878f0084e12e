"""Stage progress events for whoever shows them (the CLI's live table, tests).

Listeners are process-wide because Prefect runs tasks in worker threads of the same process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from engineforge.tracking.mlflow_tags import FLOW_RUN_URL_TAG

if TYPE_CHECKING:
    from engineforge.stage_result import StageResult
    from engineforge.tracking.mlflow_runs import TrackedRun


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


def finished(result: "StageResult") -> None:
    for listener in list(_listeners):
        listener.stage_finished(result)


def advanced(stage: str, fraction: float) -> None:
    """A long stage's share done (0..1), for listeners that show it (their optional `stage_advanced`)."""
    _tell("stage_advanced", stage, fraction)


def counted(stage: str, done: int, total: int | None, unit: str) -> None:
    """What a stage has done so far in its own unit (requests answered, bytes downloaded), for
    listeners that show it (their optional `stage_counted`)."""
    _tell("stage_counted", stage, done, total, unit)


def announce(mlflow_run: "TrackedRun", flow_run: dict[str, str]) -> None:
    """Where to follow the run: its Prefect flow run (inside one) and its MLflow page (`linked`)."""
    if FLOW_RUN_URL_TAG in flow_run:
        linked("Prefect flow run", flow_run[FLOW_RUN_URL_TAG])
    linked("MLflow run", mlflow_run.page_url())


def linked(label: str, url: str) -> None:
    """Where to follow the run (its Prefect flow run, its MLflow run), for listeners that show it
    (their optional `run_linked`)."""
    _tell("run_linked", label, url)


def noticed(line: str) -> None:
    """Something the run went on without (the Prefect API gone), for listeners that show it (their
    optional `run_noticed`)."""
    _tell("run_noticed", line)


def concluded(summary: dict) -> None:
    """The run's summary as the flow ends, before Prefect records the end, for listeners that keep it
    (their optional `run_concluded`): the outcome survives a Prefect API that is gone by then."""
    _tell("run_concluded", summary)


def stopped(mlflow_run_id: str, flow_run_id: str | None) -> None:
    """Ctrl-C stopped the run: where it is recorded (its MLflow run, marked KILLED by the flow; its Prefect
    flow run), for listeners that keep it (their optional `run_stopped`): the CLI names both records and
    marks the flow run CANCELLED once the interrupt reaches it."""
    _tell("run_stopped", mlflow_run_id, flow_run_id)


def _tell(event: str, *args) -> None:
    """`event` to the listeners that take it (the stage events above are every listener's)."""
    for listener in list(_listeners):
        method = getattr(listener, event, None)
        if method is not None:
            method(*args)
