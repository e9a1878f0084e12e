"""With validate.repeats > 1 the gates judge each figure's pessimistic end of its 95 % interval (a floor the
lower end, a ceiling the upper end), not the mean: the run's verdict, validate/gates.txt and the validation
table (validate/figures.json, and the Prefect summary's table through the same rows) agree.
Real validate record (the VALIDATE stage's record, finished as the stage task finishes it), real MLflow SQLite store; the figures are given, not measured."""

import json
from pathlib import Path

import pytest

from engineforge.tracking import mlflow_runs
from engineforge.errors import StageFailed
from engineforge.stage_result import StageResult
from engineforge.stages.validate import VALIDATE
from tasks.stage import finish as finish_stage

# Three repeats 90/100/110 tok/s (mean 100, 95 % interval 100 ± 24.84) and TTFT p99 40/50/60 ms (50 ± 24.84).
REPEATS = [{"output_tokens_per_s": tok, "ttft_ms_p99": ttft, "error_rate": 0.0, "requests": 4.0, "completed": 4.0}
           for tok, ttft in ((90.0, 40.0), (100.0, 50.0), (110.0, 60.0))]
MEANS = {"output_tokens_per_s": 100.0, "ttft_ms_p99": 50.0, "error_rate": 0.0, "requests": 4.0, "completed": 4.0}


def finish(gated_run, tmp_path, gates: str, repeats: list[dict]) -> tuple[Exception | None, str, str, dict]:
    """The error, the run's gates tag, validate/gates.txt and validate/figures.json once validate's result is recorded."""
    recipe, ctx = gated_run(gates)
    outputs = {"figures": MEANS} | ({"repeat_figures": repeats} if repeats else {})
    measured = StageResult(stage="validate", status="ran", key="v" * 64, duration_s=2.0, summary="100 tok/s", outputs=outputs)
    error = None
    try:
        finish_stage(VALIDATE, recipe, ctx, measured)
    except StageFailed as failed:
        error = failed
    client = mlflow_runs.client(ctx.mlflow_run.uri)
    folder = Path(client.download_artifacts(ctx.mlflow_run.run_id, "validate", str(tmp_path)))
    table = json.loads((folder / "figures.json").read_text())
    rows = {row[0]: dict(zip(table["columns"], row)) for row in table["data"]}
    return error, ctx.mlflow_run.read().data.tags["gates"], (folder / "gates.txt").read_text(), rows


def test_a_floor_the_mean_passes_fails_on_the_intervals_lower_end(gated_run, tmp_path):
    error, verdict, gates_txt, rows = finish(gated_run, tmp_path, "    min_output_tokens_per_s: 95\n", REPEATS)
    assert isinstance(error, StageFailed) and verdict == "failed"
    assert "output_tokens_per_s lower bound 75.2 (mean 100.0 ± 24.8), target >= 95" in gates_txt
    assert rows["output_tokens_per_s"] == {"figure": "output_tokens_per_s", "value": "100", "judged": "lower end 75.16",
                                                "gate": ">= 95", "result": "FAIL"}
    assert rows["ttft_ms_p99"]["judged"] == "" and rows["ttft_ms_p99"]["result"] == ""


def test_a_ceiling_the_mean_passes_fails_on_the_intervals_upper_end(gated_run, tmp_path):
    error, verdict, gates_txt, rows = finish(gated_run, tmp_path, "    max_ttft_ms_p99: 55\n", REPEATS)
    assert isinstance(error, StageFailed) and verdict == "failed"
    assert "ttft_ms_p99 upper bound 74.8 (mean 50.0 ± 24.8), target <= 55" in gates_txt
    assert (rows["ttft_ms_p99"]["judged"], rows["ttft_ms_p99"]["result"]) == ("upper end 74.84", "FAIL")


def test_bounds_inside_the_targets_pass(gated_run, tmp_path):
    error, verdict, _, rows = finish(gated_run, tmp_path, "    min_output_tokens_per_s: 70\n    max_ttft_ms_p99: 80\n", REPEATS)
    assert error is None and verdict == "passed"
    assert [rows[f]["result"] for f in ("output_tokens_per_s", "ttft_ms_p99")] == ["pass", "pass"]


@pytest.mark.parametrize("repeats", [[], REPEATS[:1]])
def test_one_measurement_is_judged_on_its_own_figures(gated_run, tmp_path, repeats):
    error, verdict, gates_txt, rows = finish(gated_run, tmp_path, "    min_output_tokens_per_s: 95\n", repeats)
    assert error is None and verdict == "passed" and "bound" not in gates_txt
    assert "judged" not in rows["output_tokens_per_s"]
