"""A busy Prefect server refuses a submission for a while: `engineforge submit` waits it out, and
makes one flow run, not two.

The fault is real: this test holds the write lock of the session's `prefect server` SQLite database
(`BEGIN IMMEDIATE`, as any writer does). Creating a flow run reads the deployment and then writes, and
SQLite refuses such an upgrade at once while another connection writes ("database is locked", no
busy wait), which the server answers with 503: what 16 concurrent submissions met in the soak test.
Prefect's client's own retries are switched off so that only engineforge's retry is measured."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import pytest
from prefect_services import deployment_flow_runs, submit, tiny_recipe

from engineforge.orchestration.submission import DEFAULT_DEPLOYMENT

pytestmark = pytest.mark.integration
LOCKED_S = 12.0


def test_a_submission_refused_while_the_database_is_locked_is_retried_into_one_flow_run(deployments, tmp_path):
    recipe = tmp_path / "busy-server.yaml"
    recipe.write_text(tiny_recipe("busy-server"))
    before = {run.id for run in _runs(deployments)}
    database = sqlite3.connect(deployments.root / "server" / "prefect.db", isolation_level=None, check_same_thread=False)
    database.execute("BEGIN IMMEDIATE")
    released = threading.Timer(LOCKED_S, database.execute, ("ROLLBACK",))
    started = time.monotonic()
    released.start()
    try:
        done = submit(deployments, [recipe], "--json", PREFECT_CLIENT_MAX_RETRIES="0")
    finally:
        released.join()
        database.close()
    took = time.monotonic() - started
    print(f"busy server: submission accepted {took:.1f} s after the lock was taken ({LOCKED_S:.0f} s held)")
    assert done.returncode == 0, done.stderr[-3000:]
    assert took >= LOCKED_S, "the submission went through while the database was locked: nothing was refused"
    new = [run for run in _runs(deployments) if run.id not in before]
    _delete(deployments, new)  # no worker of a later test may pick them up
    (submitted,) = json.loads(done.stdout)
    assert [str(run.id) for run in new] == [submitted["flow_run_id"]], new  # retried, never duplicated
    assert "the server is busy (HTTP 503" in done.stderr, done.stderr


def _delete(deployments, runs: list) -> None:
    from prefect.client.orchestration import get_client

    with deployments.client_settings(), get_client(sync_client=True) as client:
        for run in runs:
            client.delete_flow_run(run.id)


def _runs(deployments) -> list:
    with deployments.client_settings():
        return deployment_flow_runs(DEFAULT_DEPLOYMENT)
