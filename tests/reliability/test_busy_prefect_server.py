"""A busy Prefect server: a request that reads before it writes waits for the write lock instead of
being refused, and `engineforge submit` waits out a request that timed out without making a second
flow run.

The fault is real: these tests hold the write lock of the session's `prefect server` SQLite database
(`BEGIN IMMEDIATE`, as any writer does). Prefect begins such requests DEFERRED, and SQLite refuses
the upgrade of their read to a write at once while another connection writes ("database is locked",
no busy wait): the server answered 503, and in the soak test a worker's `PATCH /labels` lost every
retry and its flow run was crashed. The server engineforge starts (`orchestration/prefect_server.py`,
which the session's server is started with) begins them IMMEDIATE, so they wait their turn."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager

import httpx
import pytest
from prefect_services import deployment_flow_runs, submit, tiny_recipe

from engineforge.orchestration.submission import DEFAULT_DEPLOYMENT

pytestmark = pytest.mark.integration


@contextmanager
def write_locked(server, seconds: float):
    """The server's SQLite database write-locked from now for `seconds`."""
    database = sqlite3.connect(server.root / "server" / "prefect.db", isolation_level=None, check_same_thread=False)
    database.execute("BEGIN IMMEDIATE")
    released = threading.Timer(seconds, database.execute, ("ROLLBACK",))
    released.start()
    try:
        yield
    finally:
        released.join()
        database.close()


READ_THEN_WRITE = {  # the requests 16 concurrent runs saw refused: (method, path, body) for a flow run id
    "worker labels": lambda run: ("PATCH", f"/flow_runs/{run}/labels", {"prefect.worker.name": "busy"}),
    "task run": lambda run: ("POST", "/task_runs/",
                             {"flow_run_id": run, "task_key": "t", "dynamic_key": "0", "name": "t"}),
}


@pytest.mark.parametrize("name", READ_THEN_WRITE)
def test_a_request_that_reads_before_it_writes_waits_for_the_write_lock_instead_of_a_503(prefect_server, name):
    locked_s = 3.0
    with httpx.Client(base_url=prefect_server.api_url, timeout=120) as api:  # no retries: a 503 shows
        flow = api.post("/flows/", json={"name": "busy-server"}).json()["id"]
        run = api.post("/flow_runs/", json={"flow_id": flow}).json()["id"]
        method, path, body = READ_THEN_WRITE[name](run)
        try:
            started = time.monotonic()
            with write_locked(prefect_server, locked_s):
                answer = api.request(method, path, json=body)
                took = time.monotonic() - started
        finally:
            api.delete(f"/flow_runs/{run}")
    print(f"busy server: {name} answered {answer.status_code} {took:.1f} s after the lock was taken "
          f"({locked_s:.0f} s held)")
    assert answer.status_code < 300, f"{name}: {answer.status_code} {answer.text} after {took:.2f} s"
    assert took >= locked_s, f"{name} went through while the database was locked: nothing waited"


def test_a_submission_that_timed_out_while_the_database_was_locked_makes_one_flow_run(deployments, tmp_path):
    locked_s = 12.0
    recipe = tmp_path / "busy-server.yaml"
    recipe.write_text(tiny_recipe("busy-server"))
    before = {run.id for run in _runs(deployments)}
    started = time.monotonic()
    with write_locked(deployments, locked_s):
        # The client gives up after 4 s while the server waits for the lock and then commits the run:
        # submit's retry must find that run under its idempotency key, not make another.
        done = submit(deployments, [recipe], "--json", PREFECT_CLIENT_MAX_RETRIES="0", PREFECT_API_REQUEST_TIMEOUT="4")
        took = time.monotonic() - started
    print(f"busy server: submission accepted {took:.1f} s after the lock was taken ({locked_s:.0f} s held)")
    assert done.returncode == 0, done.stderr[-3000:]
    assert took >= locked_s, "the submission went through while the database was locked: nothing waited"
    new = [run for run in _runs(deployments) if run.id not in before]
    _delete(deployments, new)  # no worker of a later test may pick them up
    (submitted,) = json.loads(done.stdout)
    assert [str(run.id) for run in new] == [submitted["flow_run_id"]], new  # retried, never duplicated
    assert "the server did not answer (ReadTimeout); retrying" in done.stderr, done.stderr


def _delete(deployments, runs: list) -> None:
    from prefect.client.orchestration import get_client

    with deployments.client_settings(), get_client(sync_client=True) as client:
        for run in runs:
            client.delete_flow_run(run.id)


def _runs(deployments) -> list:
    with deployments.client_settings():
        return deployment_flow_runs(DEFAULT_DEPLOYMENT)
