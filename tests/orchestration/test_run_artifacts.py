"""What a run shows in the Prefect UI: rendering, and progress artifacts following stage events."""

import pytest

from engineforge.orchestration.run_artifacts import (
    artifact_key,
    mlflow_link,
    summary_markdown,
    validation_rows,
)
from engineforge.recipe import Gates

SUMMARY = {
    "recipe": "tiny.llama_v2", "status": "failed", "failed_stage": "validate", "error": "gates failed\nttft | too slow",
    "duration_s": 12.345, "lock_sha256": None, "figures": {},
    "stages": [
        {"stage": "download", "status": "cached", "key": "ab" * 32, "duration_s": 0.01, "summary": "synthetic | tiny"},
        {"stage": "shard", "status": "skipped", "key": None, "duration_s": 0.0, "summary": "not used"},
    ],
    "mlflow": {"tracking_uri": "sqlite:///m.db", "run_id": "r1", "experiment": "tiny"},
}


def test_artifact_keys_use_only_lowercase_letters_digits_and_dashes():
    assert artifact_key("tiny.llama_v2", "summary") == "tiny-llama-v2-summary"


def test_summary_has_one_row_per_stage_and_escapes_table_cells():
    text = summary_markdown(SUMMARY, "run `r1`")
    assert text.startswith("# tiny.llama_v2: failed in 12.3 s")
    assert "**Failed at validate**: gates failed ttft \\| too slow" in text
    assert f"| download | cached | 0.01 s | `{'ab' * 6}` | synthetic \\| tiny |" in text
    assert "| shard | skipped | 0.00 s |  | not used |" in text
    assert "**MLflow**: run `r1`" in text and "Lock file" not in text


def test_validation_rows_show_each_figure_with_its_gate():
    figures = {"output_tokens_per_s": 120.5, "ttft_ms_p99": 900.0, "device": "cpu", "errors": 0}
    rows = validation_rows(figures, Gates(min_output_tokens_per_s=100, max_ttft_ms_p99=500))
    assert rows == [
        {"figure": "output_tokens_per_s", "value": "120.5", "gate": ">= 100", "result": "pass"},
        {"figure": "ttft_ms_p99", "value": "900", "gate": "<= 500", "result": "FAIL"},
        {"figure": "errors", "value": "0", "gate": "", "result": ""},
    ]


def test_a_local_mlflow_store_is_named_with_the_command_to_browse_it():
    link = mlflow_link("sqlite:///m.db", "r1", "tiny")
    assert "`r1`" in link and "mlflow ui --backend-store-uri sqlite:///m.db" in link


@pytest.mark.integration
def test_a_long_stage_reports_its_progress_as_it_goes(prefect_api):
    from prefect import flow
    from prefect.client.orchestration import get_client

    from engineforge import progress
    from engineforge.orchestration.run_artifacts import stage_progress
    from engineforge.stage_result import StageResult

    def percent(artifact_id) -> float:
        with get_client(sync_client=True) as client:
            (artifact,) = [a for a in client.read_artifacts() if a.id == artifact_id]
        return float(artifact.data)

    seen = []

    @flow
    def shard_like():
        with stage_progress("shard"):
            listener = progress._listeners[-1]
            progress.started("shard", "abc123")
            seen.append(percent(listener.artifact_id))
            progress.advanced("shard", 0.25)
            progress.advanced("validate", 0.9)  # another stage's events are not this artifact's
            seen.append(percent(listener.artifact_id))
            progress.finished(StageResult(stage="shard", status="ran", summary="tp2"))
            seen.append(percent(listener.artifact_id))
        assert listener not in progress._listeners

    shard_like()
    assert seen == [0.0, 25.0, 100.0]


def test_validation_rows_over_repeats_judge_and_show_the_intervals_pessimistic_end():
    repeats = [{"output_tokens_per_s": v, "ttft_ms_p99": t} for v, t in ((90.0, 40.0), (100.0, 50.0), (110.0, 60.0))]
    figures = {"output_tokens_per_s": 100.0, "ttft_ms_p99": 50.0, "errors": 0}
    rows = validation_rows(figures, Gates(min_output_tokens_per_s=95, max_ttft_ms_p99=80), repeats=repeats)
    assert rows == [
        {"figure": "output_tokens_per_s", "value": "100", "judged": "lower end 75.16", "gate": ">= 95", "result": "FAIL"},
        {"figure": "ttft_ms_p99", "value": "50", "judged": "upper end 74.84", "gate": "<= 80", "result": "pass"},
        {"figure": "errors", "value": "0", "judged": "", "gate": "", "result": ""},
    ]
