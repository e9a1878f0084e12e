"""A stage's live line is announced after its task recorded and judged the result: a measurement
whose gates fail reads `failed` on the line `engineforge run` prints, as in the table and MLflow
(real validate record, real MLflow SQLite store, the CLI's live view off a terminal)."""

import io

import pytest

from rich.console import Console

from engineforge.stages import progress
from engineforge.tracking import mlflow_runs
from engineforge.cli.progress_view import LiveStages
from engineforge.errors import StageFailed
from engineforge.stage_result import StageResult
from engineforge.stages.validate import VALIDATE
from tasks.stage import finish

FIGURES = {"output_tokens_per_s": 9.0, "ttft_ms_p99": 50.0, "tpot_ms_p50": 5.0, "error_rate": 0.0,
           "requests": 4.0, "completed": 4.0}
MEASURED = StageResult(stage="validate", status="ran", key="v" * 64, duration_s=2.0, summary="9.0 tok/s",
                       outputs={"figures": FIGURES})


def announce(gated_run, ttft_gate_ms: float) -> tuple[list[str], str, Exception | None]:
    """The live view's lines, the MLflow status tag and the error when validate's result is finished."""
    recipe, ctx = gated_run(f"    max_ttft_ms_p99: {ttft_gate_ms}\n")
    shown = io.StringIO()
    view = LiveStages(Console(file=shown, width=100))
    progress.subscribe(view)
    error = None
    try:
        finish(VALIDATE, recipe, ctx, MEASURED)
    except StageFailed as failed:
        error = failed
    finally:
        progress.unsubscribe(view)
    status = ctx.mlflow_run.read().data.tags["engineforge.stage.validate.status"]
    return shown.getvalue().splitlines(), status, error


def test_a_failed_gate_reads_failed_on_the_live_line(gated_run):
    lines, status, error = announce(gated_run, ttft_gate_ms=1.0)
    assert isinstance(error, StageFailed) and "gates failed" in str(error)
    assert [line.split() for line in lines] == [["failed", "validate", "2.00s", "9.0", "tok/s"]]
    assert status == "failed"


def test_passed_gates_read_ran(gated_run):
    lines, status, error = announce(gated_run, ttft_gate_ms=100.0)
    assert error is None and status == "ran"
    assert [line.split() for line in lines] == [["ran", "validate", "2.00s", "9.0", "tok/s"]]


class Heard:
    def __init__(self):
        self.finished: list[tuple[str, str]] = []

    def stage_started(self, stage, key):
        pass

    def stage_finished(self, result):
        self.finished.append((result.stage, result.status))


@pytest.mark.integration
def test_a_flow_run_announces_each_stage_once_and_ends_its_progress_artifacts(prefect_api, tiny_model_dir, mlflow_uri,
                                                                              no_docker, monkeypatch, tmp_path, make_recipe):
    """Announcing from the task (after the record) keeps what run_stage's announcement gave: one line
    per stage, and the long stages' Prefect progress artifacts at 100 % (real Prefect API and flow)."""
    from prefect_services import flow_run_artifacts

    from engineforge.tracking.mlflow_tags import FLOW_RUN_TAG
    from flows.model_to_deployment import model_to_deployment

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    text, _ = make_recipe(str(tiny_model_dir), name="announce-test", validate="validate:\n  enabled: false\n")
    heard = Heard()
    progress.subscribe(heard)
    try:
        summary = model_to_deployment(recipe_yaml=text, recipe_origin="test.yaml", store_root=str(tmp_path / "store"))
    finally:
        progress.unsubscribe(heard)
    assert heard.finished == [(stage["stage"], stage["status"]) for stage in summary["stages"]]
    flow_run_id = mlflow_runs.client(mlflow_uri).get_run(summary["mlflow"]["run_id"]).data.tags[FLOW_RUN_TAG]
    bars = [artifact for artifact in flow_run_artifacts(flow_run_id) if artifact.type == "progress"]
    assert {bar.description.split(":")[0] for bar in bars} == {"download ran", "build ran"}
    assert all(float(bar.data) == 100 for bar in bars)
