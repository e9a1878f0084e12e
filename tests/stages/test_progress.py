"""Progress events reach each listener that takes them: the stage events every listener, the run's
links and its end (concluded, or stopped by Ctrl-C) only listeners with the optional method. A real
MLflow run (SQLite) gives the announced page."""

from mlflow.tracking import MlflowClient

from engineforge.stages import progress
from engineforge.tracking.mlflow_runs import TrackedRun
from engineforge.tracking.mlflow_tags import FLOW_RUN_TAG, FLOW_RUN_URL_TAG


class StagesOnly:
    def __init__(self):
        self.events = []

    def stage_started(self, stage, key):
        self.events.append(("started", stage))

    def stage_finished(self, result):
        self.events.append(("finished", result))


class Everything(StagesOnly):
    def run_linked(self, label, url):
        self.events.append(("linked", label, url))

    def run_stopped(self, mlflow_run_id, flow_run_id):
        self.events.append(("stopped", mlflow_run_id, flow_run_id))


def test_the_run_events_reach_only_the_listeners_that_take_them(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("progress")).info.run_id
    plain, full = StagesOnly(), Everything()
    for listener in (plain, full):
        progress.subscribe(listener)
    try:
        progress.started("build")
        progress.announce(TrackedRun(uri, run_id), {FLOW_RUN_TAG: "f-1", FLOW_RUN_URL_TAG: "http://prefect/runs/f-1"})
        progress.announce(TrackedRun(uri, run_id), {})  # outside a flow run: the MLflow page alone
        progress.stopped(run_id, "f-1")
    finally:
        for listener in (plain, full):
            progress.unsubscribe(listener)

    assert plain.events == [("started", "build")]
    page = TrackedRun(uri, run_id).page_url()
    assert run_id in page
    assert full.events == [("started", "build"), ("linked", "Prefect flow run", "http://prefect/runs/f-1"),
                           ("linked", "MLflow run", page), ("linked", "MLflow run", page), ("stopped", run_id, "f-1")]
