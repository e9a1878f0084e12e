"""A run SIGKILLed before its MLflow run exists (while its layout is planned), for real: the real
model-to-deployment flow runs against the session's `prefect server` in a child process, which is
killed with SIGKILL while it plans; its Prefect flow run stays RUNNING with no MLflow run to say whose
it was. The flow run carries its owner (tags) from its first line, so what the next run calls first
(stale_runs.close_stale, also `engineforge doctor`) closes it as CRASHED. The hang in planning is the
only thing the test arranges."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest
from mlflow.tracking import MlflowClient
from prefect_services import REPO, read_flow_run, tiny_recipe

from engineforge.orchestration.stale_runs import close_stale

pytestmark = pytest.mark.integration

HANGS_WHILE_PLANNING = textwrap.dedent("""
    import sys, time
    import flows.model_to_deployment as flow_module
    from prefect.context import FlowRunContext

    def planning(*args, **kwargs):
        sys.stdout.write(f"planning {FlowRunContext.get().flow_run.id}\\n")  # print goes to Prefect's log (log_prints)
        sys.stdout.flush()
        time.sleep(600)

    flow_module.resolve_parallel = planning
    flow_module.model_to_deployment(recipe_yaml=sys.argv[1])
""")


def test_a_run_killed_before_its_mlflow_run_exists_is_crashed_by_the_next_run(prefect_server, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = prefect_server.env("killed-early", MLFLOW_TRACKING_URI=uri, HF_HUB_OFFLINE="1")
    child = subprocess.Popen([sys.executable, "-c", HANGS_WHILE_PLANNING, tiny_recipe("killed-early")], cwd=REPO,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    flow_run_id = next((line.split()[1] for line in child.stdout if line.startswith("planning ")), None)
    assert flow_run_id, child.stderr.read()[-3000:]
    child.send_signal(signal.SIGKILL)
    child.wait()
    with prefect_server.client_settings():
        assert read_flow_run(flow_run_id).state.type.value == "RUNNING"
        assert not MlflowClient(uri).search_experiments() or not MlflowClient(uri).search_runs(
            [e.experiment_id for e in MlflowClient(uri).search_experiments()])  # no MLflow run to go by
        started = time.perf_counter()
        closed = close_stale(uri)
        print(f"flow run killed before its MLflow run: {closed} ({time.perf_counter() - started:.2f} s)")
        assert [line for line in closed if flow_run_id in line and line.endswith("CRASHED")], closed
        assert read_flow_run(flow_run_id).state.type.value == "CRASHED"
        assert not [line for line in close_stale(uri) if flow_run_id in line]  # closed once
