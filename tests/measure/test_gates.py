"""Gates from the recipe against measured figures."""

from __future__ import annotations

import math

import pytest
from rich.console import Console

from engineforge.measure.gates import GATE_FIGURES, evaluate_gates
from engineforge.recipe.schema import Gates

FIGURES = {"output_tokens_per_s": 120.0, "ttft_ms_p99": 80.0, "tpot_ms_p50": 12.0, "error_rate": 0.0,
           "token_agreement": 0.9}


def test_every_recipe_gate_reads_a_figure():
    assert set(GATE_FIGURES) == set(Gates.model_fields)


def test_unset_gates_are_not_checked():
    report = evaluate_gates(Gates(), FIGURES)
    assert report.results == [] and report.passed
    assert report.verdict == "none"  # tagged `gates: none`: nothing was checked, so nothing `passed`


def test_each_gate_direction_and_boundary():
    report = evaluate_gates(
        Gates(min_output_tokens_per_s=120, max_ttft_ms_p99=79.9, max_tpot_ms_p50=12, max_error_rate=0.0,
              min_token_agreement=0.95),
        FIGURES,
    )
    verdicts = {r.gate: r.passed for r in report.results}
    assert verdicts == {"min_output_tokens_per_s": True, "max_ttft_ms_p99": False, "max_tpot_ms_p50": True,
                        "max_error_rate": True, "min_token_agreement": False}
    assert not report.passed and [r.gate for r in report.failed] == ["max_ttft_ms_p99", "min_token_agreement"]
    ttft = report.results[1]
    assert (ttft.figure, ttft.op, ttft.target, ttft.measured) == ("ttft_ms_p99", "<=", 79.9, 80.0)


def test_missing_or_nan_figure_fails():
    report = evaluate_gates(Gates(min_token_agreement=0.5, max_ttft_ms_p99=100), {"ttft_ms_p99": math.nan})
    assert [(r.gate, r.measured, r.passed) for r in report.results] == [
        ("max_ttft_ms_p99", None, False), ("min_token_agreement", None, False)]


def test_tables_show_every_gate():
    report = evaluate_gates(Gates(min_output_tokens_per_s=200, max_error_rate=0.01), FIGURES)
    text = report.to_text()
    lines = text.splitlines()
    assert lines[0].split() == ["gate", "target", "measured", "result"]
    assert lines[1].split() == ["min_output_tokens_per_s", ">=", "200", "120", "FAIL"]
    assert lines[2].split() == ["max_error_rate", "<=", "0.01", "0", "pass"]
    console = Console(record=True, width=100)
    console.print(report.to_rich())
    rendered = console.export_text()
    assert "gates: failed" in rendered and "min_output_tokens_per_s" in rendered and "FAIL" in rendered


# -- end to end: the flow with the reference runtime (real Prefect, MLflow, transformers serve) --

GATED = "  gates:\n{gates}"
# Both end-to-end tests measure accuracy (min_token_agreement), so they share one validate key: the
# first run measures, the second reuses the measurement from the store and judges its own gates on it.
AGREEMENT = "    min_token_agreement: {target}\n"


@pytest.fixture(scope="module")
def gated(prefect_api, tiny_model_dir, tmp_path_factory):
    """A store and MLflow database shared by the module's flow runs, with a run whose gates pass
    (validate measured by it); yields (run a recipe with these gates, that run's summary, MLflow URI)."""
    from conftest import recipe_text

    from flows.model_to_deployment import model_to_deployment

    root = tmp_path_factory.mktemp("gated")
    uri = f"sqlite:///{root / 'mlflow.db'}"

    def run(gates: str) -> dict:
        validate = ("validate:\n  requests: 4\n  concurrency: 2\n  warmup_requests: 1\n  max_tokens: 8\n"
                    + GATED.format(gates=gates))
        text = recipe_text(str(tiny_model_dir), name="gated", validate=validate)
        return model_to_deployment(recipe_yaml=text, recipe_origin="gated.yaml", store_root=str(root / "store"))

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("DOCKER_HOST", f"unix://{root / 'no-docker.sock'}")
        yield run, run("    max_error_rate: 0\n" + AGREEMENT.format(target=1.0)), uri


@pytest.mark.integration
def test_flow_passes_gates_and_goes_on(gated):
    from mlflow.tracking import MlflowClient

    _, summary, mlflow_uri = gated
    assert summary["status"] == "completed" and summary["figures"]["token_agreement"] == 1.0
    assert {s["stage"]: s["status"] for s in summary["stages"]}["validate"] == "ran"
    assert [s["stage"] for s in summary["stages"]][-2:] == ["package", "register"]
    mlflow_run = MlflowClient(mlflow_uri).get_run(summary["mlflow"]["run_id"])
    assert mlflow_run.data.tags["gates"] == "passed" and mlflow_run.data.metrics["token_agreement"] == 1.0
    artifacts = {item.path for item in MlflowClient(mlflow_uri).list_artifacts(mlflow_run.info.run_id, "validate")}
    assert {"validate/latency_cdf.png", "validate/accuracy.json", "validate/gates.txt"} <= artifacts


@pytest.mark.integration
def test_flow_fails_on_a_gate_with_the_table(gated):
    from mlflow.tracking import MlflowClient

    from engineforge.errors import StageFailed

    run, _, mlflow_uri = gated
    with pytest.raises(StageFailed) as failure:  # judged on the measurement in the store: gates judge every run
        run("    max_error_rate: 0\n    max_ttft_ms_p99: 0.001\n" + AGREEMENT.format(target=0.0))
    assert failure.value.stage == "validate"
    table = failure.value.cause.splitlines()
    assert table[0] == "gates failed" and table[1].split() == ["gate", "target", "measured", "result"]
    assert table[2].split()[0] == "max_ttft_ms_p99" and table[2].split()[-1] == "FAIL"
    assert table[3].split()[0] == "max_error_rate" and table[3].split()[-1] == "pass"
    summary = failure.value.summary
    assert [s["stage"] for s in summary["stages"]] == ["download", "shard", "build"]  # no package, no register
    client = MlflowClient(mlflow_uri)
    mlflow_run = client.get_run(summary["mlflow"]["run_id"])
    assert mlflow_run.info.status == "FAILED" and mlflow_run.data.tags["gates"] == "failed"
    assert {item.path for item in client.list_artifacts(mlflow_run.info.run_id, "validate")} >= {
        "validate/gates.txt", "validate/validation.json"}
