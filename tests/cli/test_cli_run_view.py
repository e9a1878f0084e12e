"""`engineforge run` as a user meets it, as a subprocess against a real `prefect server start`, a real
MLflow store and real `transformers serve`: the first line, the addresses it prints, what the Prefect
and MLflow UIs then show, a cached rerun, Ctrl-C, and a failed gate."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from engineforge.recipe.file import parse_recipe, recipe_hash
from engineforge.artifacts.store import MANIFEST, TEMPORARY, Store
from prefect_services import BIN, flow_run_log_lines, mlflow_run_of, read_flow_run, tiny_recipe

pytestmark = pytest.mark.integration

FLOW_RUN_LINE = re.compile(r"^Prefect flow run: (http://\S+/runs/flow-run/([0-9a-f-]{36}))$", re.MULTILINE)
MLFLOW_RUN_LINE = re.compile(r"^MLflow run: http://127\.0\.0\.1:5000/#/experiments/(\w+)/runs/(\w+)\?workflowType=machine_learning$", re.MULTILINE)


@pytest.fixture
def user(prefect_server, tmp_path):
    """A working directory with a recipe, and the environment of a user of that server."""
    recipe = tmp_path / "view.yaml"
    recipe.write_text(tiny_recipe("cli-view"))
    env = prefect_server.env("cli-view", MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
                             ENGINEFORGE_STORE=str(tmp_path / "store"), DOCKER_HOST=f"unix://{tmp_path / 'none.sock'}",
                             COLUMNS="200")  # rich's width off a terminal: table cells unwrapped
    return recipe, env


def run(recipe: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "engineforge"), "run", recipe.name, *args], cwd=recipe.parent, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.mark.timeout(1800)  # two full runs as subprocesses; on a loaded 2-core machine a run took over 7 minutes
def test_run_prints_where_to_follow_it_and_records_browsable_runs(prefect_server, user):
    recipe, env = user
    label = f"cli-view-{recipe_hash(parse_recipe(recipe.read_text(), 'x'))[:8]}"

    done = run(recipe, env)

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == f"engineforge run {recipe.name}: checking the recipe; Prefect API starting"
    flow_run_url, flow_run_id = FLOW_RUN_LINE.search(done.stdout).groups()
    assert flow_run_url.startswith(prefect_server.api_url.removesuffix("/api"))
    experiment_id, run_id = MLFLOW_RUN_LINE.search(done.stdout).groups()
    assert "telemetry" not in (done.stdout + done.stderr).lower() and "| INFO" not in done.stdout + done.stderr
    assert re.search(r"^\s+ran validate .* tok/s", done.stdout, re.MULTILINE)
    with prefect_server.client_settings():
        assert read_flow_run(flow_run_id).name == label
        assert flow_run_log_lines(flow_run_id), "the flow run's Logs tab is empty"
    uri = env["MLFLOW_TRACKING_URI"]
    measured = mlflow_run_of(uri, flow_run_id)
    assert measured.info.run_id == run_id and measured.info.run_name == label
    assert "| validate | ran |" in measured.data.tags["mlflow.note.content"]
    client = MlflowClient(uri)
    assert client.get_experiment(experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    validate_artifacts = {item.path for item in client.list_artifacts(run_id, "validate")}
    assert "validate/figures.json" in validate_artifacts
    assert {item.path for item in client.list_artifacts(run_id, "package")} == {"package/Dockerfile.txt"}
    assert measured.data.metrics["output_tokens_per_s"] > 0

    again = run(recipe, env)

    assert again.returncode == 0, again.stdout + again.stderr
    rerun_id = MLFLOW_RUN_LINE.search(again.stdout).group(2)
    rerun = client.get_run(rerun_id)
    assert rerun.info.run_name == f"{label} cached"
    assert rerun.data.tags["engineforge.cache_hit"] == "true"
    assert rerun.data.tags["engineforge.measured_by_run"] == run_id
    assert "output_tokens_per_s" not in rerun.data.metrics  # not logged again as a new measurement


def started(recipe: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "engineforge"), "run", recipe.name, *args], cwd=recipe.parent, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def interrupted(process: subprocess.Popen) -> tuple[str, str]:
    """Ctrl-C as a terminal sends it (SIGINT to the whole foreground group); the rest of stdout, stderr."""
    os.killpg(process.pid, signal.SIGINT)
    return process.communicate(timeout=300)


def test_ctrl_c_prints_one_line_and_closes_both_runs(prefect_server, user):
    recipe, env = user
    process = started(recipe, env)
    lines = []
    for line in process.stdout:  # validate (a server start and the load) follows build
        lines.append(line)
        if re.match(r"^\s+ran build ", line):
            break
    rest, errors = interrupted(process)
    lines += rest.splitlines(keepends=True)

    assert process.returncode == 130, "".join(lines) + errors
    assert "Traceback" not in errors and errors.strip() == "", errors
    last = lines[-1].strip()
    flow_run_id = FLOW_RUN_LINE.search("".join(lines)).group(2)
    run_id = MLFLOW_RUN_LINE.search("".join(lines)).group(2)
    assert last == (f"interrupted: MLflow run {run_id} KILLED, Prefect flow run {flow_run_id} CANCELLED; "
                    "finished stages stay in the store")
    assert MlflowClient(env["MLFLOW_TRACKING_URI"]).get_run(run_id).info.status == "KILLED"
    with prefect_server.client_settings():
        assert read_flow_run(flow_run_id).state.type.value == "CANCELLED"
    assert len(list((Path(env["ENGINEFORGE_STORE"]) / "build").iterdir())) == 1  # the built stage stays reusable


@pytest.mark.timeout(1800)  # a full run, then a refresh interrupted
def test_a_failed_gate_reads_failed_everywhere_and_an_interrupted_refresh_keeps_its_measurement(prefect_server, user):
    recipe, env = user
    recipe.write_text(recipe.read_text() + "  gates:\n    min_output_tokens_per_s: 1000000000\n")

    done = run(recipe, env)

    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert done.stderr.splitlines() == ["error: stage validate failed: gates failed"]
    assert output.count("min_output_tokens_per_s") == 1, output  # the gate table, once
    assert re.search(r"validate\s+│\s+failed", done.stdout), done.stdout
    assert re.search(r"^\s+failed validate ", done.stdout, re.MULTILINE), done.stdout  # the live line, as the table
    assert not re.search(r"^\s+ran validate ", done.stdout, re.MULTILINE), done.stdout
    run_id = MLFLOW_RUN_LINE.search(done.stdout).group(2)
    tags = MlflowClient(env["MLFLOW_TRACKING_URI"]).get_run(run_id).data.tags
    assert tags["engineforge.stage.validate.status"] == "failed" and tags["gates"] == "failed"

    # Ctrl-C during `--refresh validate` leaves the measurement the run above made in place.
    validate = Path(env["ENGINEFORGE_STORE"]) / "validate"
    (entry,) = [path for path in validate.iterdir() if not path.name.startswith(".")]
    measured = (entry / MANIFEST).read_text()
    process = started(recipe, env, "--refresh", "validate")
    deadline = time.monotonic() + 600
    while not any(path.name.startswith(TEMPORARY) for path in validate.iterdir()):  # the new measurement is under way
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.5)
    rest, errors = interrupted(process)
    assert process.returncode == 130, rest + errors
    assert (entry / MANIFEST).read_text() == measured and Store(validate.parent).intact("validate", entry.name)
