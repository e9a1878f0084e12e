"""The spine end to end: a real Prefect API, a real MLflow store, real `transformers serve`."""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import recipe_text
from mlflow.tracking import MlflowClient

from engineforge.errors import StageFailed, UserError
from flows.model_to_deployment import model_to_deployment

pytestmark = pytest.mark.integration


def run_flow(text: str, store: Path, **kwargs) -> dict:
    return model_to_deployment(recipe_yaml=text, recipe_origin="test.yaml", store_root=str(store), **kwargs)


def statuses(summary: dict) -> dict[str, str]:
    return {stage["stage"]: stage["status"] for stage in summary["stages"]}


def artifact_names(client: MlflowClient, run_id: str) -> set[str]:
    names = set()
    for item in client.list_artifacts(run_id):
        names |= {child.path for child in client.list_artifacts(run_id, item.path)} if item.is_dir else {item.path}
    return names


@dataclass
class SpineRun:
    text: str
    store: Path
    mlflow_uri: str
    no_docker: str
    summary: dict


@pytest.fixture(scope="module")
def spine(prefect_api, tiny_model_dir, tmp_path_factory):
    """One measured run of the reference recipe, whose store the module's later tests reuse: a run
    that starts `transformers serve` is the costly part of this file."""
    root = tmp_path_factory.mktemp("spine")
    text, uri, no_docker = recipe_text(str(tiny_model_dir)), f"sqlite:///{root / 'mlflow.db'}", f"unix://{root / 'no-docker.sock'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("DOCKER_HOST", no_docker)
        yield SpineRun(text, root / "store", uri, no_docker, run_flow(text, root / "store"))


def assert_each_stage_logged_in_prefect(run):
    """The flow run's logs hold each stage's line: status, summary (the skip reason too) and the MLflow run."""
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # Prefect 3.9.1 sends logs in batches: drain them before reading (logging/handlers.py)
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.data.tags["engineforge.prefect.flow_run_id"]])))
    lines = [log.message for log in logs if "(MLflow run: " in log.message]
    assert [line.split()[0] for line in lines] == ["download", "shard", "build", "validate", "package", "register"]
    assert all(run.info.run_id in line for line in lines)
    assert any(line.startswith("package skipped in ") and ": no Docker daemon at " in line for line in lines)


def test_flow_records_validates_registers_then_reuses_everything(spine, tmp_path):
    text, store, mlflow_uri, first = spine.text, spine.store, spine.mlflow_uri, spine.summary

    assert statuses(first) == {"download": "ran", "shard": "skipped", "build": "ran", "validate": "ran",
                               "package": "skipped", "register": "ran"}
    package = next(stage for stage in first["stages"] if stage["stage"] == "package")
    assert package["summary"].startswith(f"no Docker daemon at {spine.no_docker}")
    client = MlflowClient(mlflow_uri)
    run = client.get_run(first["mlflow"]["run_id"])
    assert run.info.run_name.startswith("spine-test-") and run.info.status == "FINISHED"
    assert run.data.metrics["output_tokens_per_s"] > 0 and run.data.metrics["ttft_ms_p50"] > 0
    assert run.data.metrics["errors"] == 0
    assert run.data.params["validate.requests"] == "4" and run.data.params["runtime"] == "transformers"
    assert run.data.tags["engineforge.runtime"] == "transformers"
    assert run.data.tags["engineforge.parallel"] == "tp1-pp1-ep1"
    assert run.data.tags["engineforge.model_revision"].startswith("sha256:")
    assert run.data.tags["engineforge.stage.build.key"] == next(s["key"] for s in first["stages"] if s["stage"] == "build")
    assert {"recipe.yaml", "engineforge.lock.json", "plan.json", "validate/validation.json", "package/Dockerfile.txt"} <= artifact_names(
        client, run.info.run_id
    )
    lock = json.loads(Path(client.download_artifacts(run.info.run_id, "engineforge.lock.json", str(tmp_path))).read_text())
    assert lock["model"]["revision"] == run.data.tags["engineforge.model_revision"]
    assert set(lock["stages"]) == {"download", "build", "validate", "package", "register"}
    assert (lock["parallel"]["tp"], lock["parallel"]["pp"]) == (1, 1) and lock["tools"]["transformers"]
    assert (lock["parallel"]["gpu"], lock["parallel"]["gpus"]) == ("cpu", 0)  # a CPU recipe is not planned onto GPUs
    version = client.get_model_version_by_alias("spine-test", "candidate")
    assert version.run_id == run.info.run_id and version.source.startswith("file://")
    described = client.get_model_version("spine-test", version.version).description  # the figures, gates, measuring run
    assert described.startswith("**Figures**: output_tokens_per_s ") and "ttft_ms_p99 " in described
    assert f"**Gates**: {run.data.tags['gates']}" in described and f"run `{run.info.run_id}`" in described
    assert run.data.tags["engineforge.lock_sha256"] in described

    assert_each_stage_logged_in_prefect(run)

    second = run_flow(text, store)

    assert statuses(second) == {"download": "cached", "shard": "skipped", "build": "cached", "validate": "cached",
                                "package": "skipped", "register": "cached"}
    assert second["figures"] == first["figures"]
    assert client.get_model_version_by_alias("spine-test", "candidate").version == version.version
    rerun = client.get_run(second["mlflow"]["run_id"])
    assert "output_tokens_per_s" not in rerun.data.metrics  # measured once, by the first run
    assert rerun.data.tags["engineforge.measured_by_run"] == run.info.run_id
    assert rerun.info.run_name == f"{run.info.run_name} cached"

    refreshed = run_flow(text, store, refresh=["validate"])
    assert statuses(refreshed)["validate"] == "ran" and statuses(refreshed)["build"] == "cached"


def test_failed_stage_fails_the_flow_and_keeps_what_was_recorded(
    prefect_api, tiny_model_dir, mlflow_uri, monkeypatch, tmp_path, make_recipe
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    model_dir = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_model_dir, model_dir, ignore=shutil.ignore_patterns("tokenizer*", "chat_template*"))
    text, _ = make_recipe(str(model_dir))
    store = tmp_path / "store"

    with pytest.raises(StageFailed) as failure:
        run_flow(text, store)

    assert failure.value.stage == "build" and "no tokenizer files" in failure.value.cause
    summary = failure.value.summary
    assert [stage["stage"] for stage in summary["stages"]] == ["download", "shard"]
    client = MlflowClient(mlflow_uri)
    run = client.get_run(summary["mlflow"]["run_id"])
    assert run.info.status == "FAILED"
    assert {"recipe.yaml", "engineforge.lock.json"} <= artifact_names(client, run.info.run_id)
    assert len(list((store / "download").iterdir())) == 1  # the finished stage stays reusable
    assert not (store / "build").exists() or not list((store / "build").iterdir())


def test_bad_model_source_is_a_user_error_before_any_run(prefect_api, mlflow_uri, monkeypatch, tmp_path, make_recipe):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    text, _ = make_recipe(str(tmp_path / "missing"))
    with pytest.raises(UserError, match="not a directory with a config.json"):
        run_flow(text, tmp_path / "store")
    assert MlflowClient(mlflow_uri).search_experiments(filter_string="name = 'spine-test'") == []


def test_run_command_prints_a_json_summary_and_exit_codes(spine, mlflow_uri, monkeypatch, no_docker, tmp_path, capsys):
    """What the command prints and returns; the stages come from the spine's store (measured once)."""
    from engineforge.cli.app import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    text = spine.text
    recipe = tmp_path / "cli.yaml"
    recipe.write_text(text)
    store = ["--store", str(spine.store)]

    assert main(["run", str(recipe), "--json", *store]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "completed" and summary["figures"]["output_tokens_per_s"] > 0
    assert [stage["stage"] for stage in summary["stages"]] == ["download", "shard", "build", "validate", "package", "register"]

    recipe.write_text(text.replace("max_tokens: 8", "max_tokens: 0"))
    assert main(["run", str(recipe), *store]) == 2
    assert capsys.readouterr().err.startswith(f"error: {recipe}:")
