"""What a run shows in the Prefect UI (rendering only; publishing is covered by the Prefect tests)."""

from engineforge.recipe import Gates
from engineforge.run_artifacts import artifact_key, mlflow_link, summary_markdown, validation_rows

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
