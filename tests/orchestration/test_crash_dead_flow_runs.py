"""What dead owners on this host left unfinished in Prefect is CRASHED by the next run (and `engineforge
doctor`): a flow run still RUNNING, and the RUNNING task run of a flow run its worker already ended
Crashed; a live owner's runs are left alone. A real Prefect API; the owners are tokens, as the flow
tags them (stale_runs.own_flow_run)."""

from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.states import Crashed, Running

from engineforge.orchestration.stale_runs import OWNED_TAG, OWNER_TAG, crash_dead_flow_runs
from engineforge.processes.owner import Owner


@flow
def recorded():
    pass


@task
def stage():
    pass


def owned_by(client, owner: Owner, state, task_state) -> tuple:
    flow_run = client.create_flow_run(recorded, tags=[OWNED_TAG, OWNER_TAG + owner.token()], state=state)
    task_run = client.create_task_run(stage, flow_run_id=flow_run.id, dynamic_key="0", state=task_state)
    return flow_run.id, task_run.id


def test_dead_owners_flow_runs_and_task_runs_are_crashed_and_live_ones_left(prefect_api):
    me = Owner.current()
    dead = Owner(me.host, "0" * 16, me.pid, me.started)  # another boot of this host: certainly dead
    with get_client(sync_client=True) as client:
        running = owned_by(client, dead, Running(), Running())
        ended = owned_by(client, dead, Crashed(message="the worker saw its process exit"), Running())
        live = owned_by(client, me, Running(), Running())

        closed = crash_dead_flow_runs()

        state = {run_id: client.read_flow_run(run_id).state.type.value for run_id, _ in (running, ended, live)}
        tasks = {run_id: client.read_task_run(task_id).state.type.value for run_id, task_id in (running, ended, live)}
    assert sorted(line.rsplit(": ", 1)[1] for line in closed) == ["CRASHED", "already CRASHED"], closed
    assert [state[running[0]], state[ended[0]], state[live[0]]] == ["CRASHED", "CRASHED", "RUNNING"]
    assert [tasks[running[0]], tasks[ended[0]], tasks[live[0]]] == ["CRASHED", "CRASHED", "RUNNING"]
    assert crash_dead_flow_runs() == []  # closed once
