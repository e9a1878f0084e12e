"""Closing what a killed run left RUNNING: its MLflow run (KILLED), what it had registered (undone
whole), and its Prefect flow run and task runs (CRASHED). Each record carries its owner (host, boot id,
pid): the MLflow run as tags when it starts (engineforge/tracking/mlflow_runs.py, which closes those), the
flow run as tags first thing in the flow (`own_flow_run`, closed here), so a run killed before its MLflow
run existed (while its recipe was parsed or its layout planned) is closed too.
"""

from __future__ import annotations

from engineforge.processes.owner import Owner
from engineforge.tracking import mlflow_runs

OWNED_TAG = "engineforge.owned"  # what the search filters on; the owner's own tag varies
OWNER_TAG = "engineforge.owner:"


def close_stale(uri: str, prefect: bool = True) -> list[str]:
    """Close the records of dead owners on this host (the Prefect ones only with `prefect`, when its
    API answers); one line per closed run."""
    return mlflow_runs.close_stale_runs(uri) + (crash_dead_flow_runs() if prefect else [])


def own_flow_run() -> None:
    """Tag the flow run executing this code with its owner (this process), first thing in a flow."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return
    tags = [*context.flow_run.tags, OWNED_TAG, OWNER_TAG + Owner.current().token()]
    with get_client(sync_client=True) as client:
        client.update_flow_run(context.flow_run.id, tags=tags)


def crash_dead_flow_runs() -> list[str]:
    """CRASHED for what dead owners on this host left unfinished in Prefect: their flow runs, and the
    task runs of any of their flow runs (one their worker already ended keeps its task runs RUNNING);
    one line per flow run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.objects import StateType

    owned = FlowRunFilterTags(all_=[OWNED_TAG])
    unfinished = FlowRunFilter(tags=owned, state=FlowRunFilterState(
        type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING])))
    closed = []
    with get_client(sync_client=True) as client:
        runs = {run.id: run for run in client.read_flow_runs(flow_run_filter=unfinished)}
        ended = {task_run.flow_run_id for task_run in client.read_task_runs(
            flow_run_filter=FlowRunFilter(tags=owned), task_run_filter=_unfinished_task_runs())} - runs.keys() - {None}
        if ended:  # one request for them all
            by_id = FlowRunFilter(id=FlowRunFilterId(any_=list(ended)))
            runs |= {run.id: run for run in client.read_flow_runs(flow_run_filter=by_id)}
        for run in runs.values():
            owner = next((Owner.parse(tag[len(OWNER_TAG):]) for tag in run.tags if tag.startswith(OWNER_TAG)), None)
            if owner is not None and owner.is_dead():
                line = f"Prefect flow run {run.id} ({run.name}) of a dead process {owner.token()}"
                closed.append(f"{line}: {_crash(client, run, line)}")
    return closed


def _crash(client, flow_run, reason: str) -> str:
    """Set a flow run that is not final, and its unfinished task runs, to CRASHED; say what was done."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.states import Crashed

    for task_run in client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id])),
                                          task_run_filter=_unfinished_task_runs()):
        client.set_task_run_state(task_run.id, Crashed(message=reason), force=True)
    if flow_run.state is not None and flow_run.state.is_final():
        return f"already {flow_run.state.type.value}"
    client.set_flow_run_state(flow_run.id, Crashed(message=reason), force=True)
    return "CRASHED"


def _unfinished_task_runs():
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterState, TaskRunFilterStateType
    from prefect.client.schemas.objects import StateType

    return TaskRunFilter(state=TaskRunFilterState(type=TaskRunFilterStateType(
        any_=[StateType.RUNNING, StateType.PENDING, StateType.SCHEDULED])))
