"""Closing what a killed run left RUNNING: its MLflow run (KILLED), what it had registered (undone
whole), and its Prefect flow run and task runs (CRASHED). The owner of a run (host, boot id, pid)
is recorded as MLflow tags when it starts (engineforge/tracking/mlflow_runs.py) beside the Prefect flow run's
id, so one dead owner closes both records. The flow run carries its owner too (tags), for a run
killed before its MLflow run existed (while its recipe was parsed or its layout planned).
"""

from __future__ import annotations

from uuid import UUID

from engineforge.tracking import mlflow_runs
from engineforge.tracking.mlflow_tags import FLOW_RUN_TAG
from engineforge.processes.owner import Owner

OWNED_TAG = "engineforge.owned"  # what the search filters on; the owner's own tag varies
OWNER_TAG = "engineforge.owner:"


def close_stale(uri: str, experiment_ids: list[str] | None = None, prefect: bool = True) -> list[str]:
    """Close the records of dead owners on this host (the Prefect ones only with `prefect`, when its
    API answers); return one line per closed run."""
    closed = []
    for run in mlflow_runs.close_stale_runs(uri, experiment_ids):
        line = f"MLflow run {run.info.run_id} ({run.info.run_name}) of a dead process: KILLED"
        line += "".join(f"; {undone}" for undone in mlflow_runs.TrackedRun(uri, run.info.run_id).undo_registration())
        flow_run_id = run.data.tags.get(FLOW_RUN_TAG)
        if flow_run_id and prefect:
            line += f"; Prefect flow run {flow_run_id}: {crash_flow_run(flow_run_id, line)}"
        closed.append(line)
    return closed + (crash_dead_flow_runs() if prefect else [])


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
    """CRASHED for the unfinished flow runs whose owner on this host is dead; one line per run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.objects import StateType

    unfinished = FlowRunFilter(tags=FlowRunFilterTags(all_=[OWNED_TAG]), state=FlowRunFilterState(
        type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING])))
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=unfinished)
    closed = []
    for run in runs:
        owner = next((Owner.parse(tag[len(OWNER_TAG):]) for tag in run.tags if tag.startswith(OWNER_TAG)), None)
        if owner is not None and owner.is_dead():
            line = f"Prefect flow run {run.id} ({run.name}) of a dead process {owner.token()}"
            closed.append(f"{line}: {crash_flow_run(str(run.id), line)}")
    return closed


def crash_flow_run(flow_run_id: str, reason: str) -> str:
    """Set a flow run that is not final, and its unfinished task runs, to CRASHED; say what was done."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        TaskRunFilter,
        TaskRunFilterState,
        TaskRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Crashed

    unfinished = TaskRunFilter(state=TaskRunFilterState(type=TaskRunFilterStateType(
        any_=[StateType.RUNNING, StateType.PENDING, StateType.SCHEDULED])))
    with get_client(sync_client=True) as client:
        try:
            flow_run = client.read_flow_run(UUID(flow_run_id))
        except ObjectNotFound:
            return "not on this Prefect server"
        for task_run in client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id])),
                                              task_run_filter=unfinished):
            client.set_task_run_state(task_run.id, Crashed(message=reason), force=True)
        if flow_run.state is not None and flow_run.state.is_final():
            return f"already {flow_run.state.type.value}"
        client.set_flow_run_state(flow_run.id, Crashed(message=reason), force=True)
        return "CRASHED"
