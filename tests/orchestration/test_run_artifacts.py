"""What a run shows in the Prefect UI: rendering, and progress artifacts following stage events."""

import pytest

from engineforge.orchestration.run_artifacts import (
    artifact_key,
    mlflow_link,
    summary_markdown,
    validation_rows,
)
from engineforge.recipe.schema import Gates
from engineforge.tracking.mlflow_runs import TrackedRun

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


def test_the_summary_leads_with_the_figures_that_decide_and_ends_with_the_stage_table():
    """MLflow shows a description's first lines until "Show more": the figures and links come before the stages."""
    text = summary_markdown(SUMMARY | {"figures": {"requests": 4.0, "ttft_ms_p50": 20.5, "output_tokens_per_s": 300.0}},
                            "run `r1`", "[flow run f1](http://prefect/f1)")
    assert text.splitlines()[2:7] == ["**Failed at validate**: gates failed ttft \\| too slow", "",
                                      "**Validation**: output_tokens_per_s 300, ttft_ms_p50 20.5", "", "**MLflow**: run `r1`"]
    assert text.index("**Prefect**: [flow run f1]") < text.index("| stage |") and text.rstrip().endswith("| not used |")


def test_validation_rows_show_each_figure_with_its_gate():
    figures = {"output_tokens_per_s": 120.5, "ttft_ms_p99": 900.0, "device": "cpu", "errors": 0}
    rows = validation_rows(figures, Gates(min_output_tokens_per_s=100, max_ttft_ms_p99=500))
    assert rows == [
        {"figure": "output_tokens_per_s", "value": "120.5", "gate": ">= 100", "result": "pass"},
        {"figure": "ttft_ms_p99", "value": "900", "gate": "<= 500", "result": "FAIL"},
        {"figure": "errors", "value": "0", "gate": "", "result": ""},
    ]


def test_a_local_mlflow_store_is_named_with_the_command_to_browse_it():
    link = mlflow_link(TrackedRun("sqlite:///m.db", "r1"), "tiny")
    assert "`r1`" in link and "mlflow ui --backend-store-uri sqlite:///m.db" in link


@pytest.mark.integration
def test_a_long_stage_reports_its_progress_as_it_goes(prefect_api):
    from prefect import flow
    from prefect.client.orchestration import get_client

    from engineforge.stages import progress
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


@pytest.mark.integration
def test_side_by_side_flow_runs_each_end_their_own_progress_at_100_percent(prefect_api):
    """A sweep's children run in threads of one process, and progress listeners are process-wide: each
    flow run's bar hears only its own stage (a child's download once stayed at 0 % on a completed run,
    and another had two bars)."""
    import contextvars
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterType, FlowRunFilter, FlowRunFilterId

    from engineforge.stages import progress
    from engineforge.orchestration.run_artifacts import stage_progress
    from engineforge.stage_result import StageResult

    both_listening = threading.Barrier(2, timeout=60)
    started = {name: threading.Event() for name in "ab"}
    finished = threading.Event()

    @flow
    def child(name: str, first: bool) -> str:
        from prefect.runtime import flow_run

        with stage_progress("download"):
            both_listening.wait()  # each bar listens before either stage starts
            if not first:
                started["a"].wait(60)  # a starts first, b while a runs, a ends first
            progress.started("download", f"key-{name}")
            started[name].set()
            if first:
                started["b"].wait(60)
            else:
                finished.wait(60)
            progress.advanced("download", 0.5)
            progress.finished(StageResult(stage="download", status="ran", summary=f"{name} done"))
            if first:
                finished.set()
        return flow_run.id

    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(contextvars.copy_context().run, child, name, first) for name, first in (("a", True), ("b", False))]
        flow_run_ids = [run.result(timeout=120) for run in runs]
    with get_client(sync_client=True) as client:
        bars = {run_id: [(a.data, a.description) for a in client.read_artifacts(
            artifact_filter=ArtifactFilter(type=ArtifactFilterType(any_=["progress"])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))] for run_id in flow_run_ids}
    assert bars == {flow_run_ids[0]: [(100.0, "download ran: a done")], flow_run_ids[1]: [(100.0, "download ran: b done")]}


def test_the_mlflow_description_links_the_prefect_flow_run_and_shows_aliases_as_written():
    from engineforge.tracking.mlflow_tags import FLOW_RUN_TAG, FLOW_RUN_URL_TAG
    from engineforge.orchestration.run_artifacts import no_mentions, prefect_link

    link = prefect_link({FLOW_RUN_TAG: "0b6f", FLOW_RUN_URL_TAG: "http://127.0.0.1:4200/runs/flow-run/0b6f"})
    assert link == "[flow run 0b6f](http://127.0.0.1:4200/runs/flow-run/0b6f)" and prefect_link({}) is None
    text = summary_markdown(SUMMARY, "run `r1`", link)
    assert "**MLflow**: run `r1`\n\n**Prefect**: [flow run 0b6f](http://127.0.0.1:4200/runs/flow-run/0b6f)\n\n" in text
    # MLflow's markdown links @word to a GitHub user; a code span stays as written (and is not wrapped twice)
    assert no_mentions("tiny version 2 @candidate @champion, by me@host") == "tiny version 2 `@candidate` `@champion`, by me@host"
    assert no_mentions("@champion at [run](https://user@mlflow.example/#/x)") == "`@champion` at [run](https://user@mlflow.example/#/x)"
    assert no_mentions(no_mentions("v 1 @champion")) == "v 1 `@champion`"


def test_validation_rows_over_repeats_judge_and_show_the_intervals_pessimistic_end():
    repeats = [{"output_tokens_per_s": v, "ttft_ms_p99": t} for v, t in ((90.0, 40.0), (100.0, 50.0), (110.0, 60.0))]
    figures = {"output_tokens_per_s": 100.0, "ttft_ms_p99": 50.0, "errors": 0}
    rows = validation_rows(figures, Gates(min_output_tokens_per_s=95, max_ttft_ms_p99=80), repeats=repeats)
    assert rows == [
        {"figure": "output_tokens_per_s", "value": "100", "judged": "lower end 75.16", "gate": ">= 95", "result": "FAIL"},
        {"figure": "ttft_ms_p99", "value": "50", "judged": "upper end 74.84", "gate": "<= 80", "result": "pass"},
        {"figure": "errors", "value": "0", "judged": "", "gate": "", "result": ""},
    ]


@pytest.mark.integration
def test_the_recipe_shows_in_prefect_setting_by_setting_and_its_parameter_is_described(prefect_api):
    import json

    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from engineforge.orchestration.run_artifacts import publish_recipe
    from engineforge.recipe.file import load_recipe
    from flows.sweep import sweep

    recipe = load_recipe("recipes/tiny-llama-sweep.yaml")

    @flow
    def shows_its_recipe():
        publish_recipe(recipe)

    shows_its_recipe()
    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["tiny-llama-sweep-recipe"])))
    rows = {row["setting"]: row["value"] for row in json.loads(artifact.data)}
    assert artifact.type == "table" and rows["name"] == "tiny-llama-sweep"
    assert rows["validate.gates.max_ttft_ms_p99"] == "12000.0" and "validate.gates.max_tpot_ms_p50" not in rows  # unset
    assert json.loads(rows["sweep.matrix.build.max_batch_size"]) == [1, 8] and json.loads(rows["sweep.load"])[1]["requests"] == 16
    assert sweep.parameters.properties["recipe_yaml"]["description"].startswith("The recipe file's text (YAML)")
