"""What a submitter can choose on a worker: not where it writes. `engineforge submit` refuses the
flow parameters that choose paths before it contacts any server; the flow, run from a deployment,
uses the worker's own store whatever `store_root` says; a recipe the flow refuses ends the flow run
Failed with the one-line reason (it ended Crashed, the reason lost, when naming the run failed).

The flow runs against the session's real Prefect API (test harness). "Run from a deployment" is
Prefect's own runtime override `PREFECT__RUNTIME__DEPLOYMENT__ID` (prefect/runtime/deployment.py):
no worker process is started here.
"""

from __future__ import annotations

import socket

import pytest

from engineforge.cli.app import main

RECIPE = "name: submitted\nmodel:\n  source: synthetic:tiny\n"


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/api"


@pytest.mark.parametrize("param", ["store_root=/tmp/elsewhere", "base_dir=/etc", "recipe_yaml=x"])
def test_submit_refuses_path_parameters_before_contacting_the_server(tmp_path, capsys, param):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    with temporary_settings(updates={PREFECT_API_URL: _closed_port_url()}):  # nothing listens: a contact would say so
        assert main(["submit", "--param", param, str(recipe)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    name = param.split("=")[0]
    assert lines == [f"error: --param {name}: not open to a submitter; the worker's own settings choose its paths "
                     "(ENGINEFORGE_STORE, ENGINEFORGE_MODEL_ROOTS) and submit sends the recipe itself"], lines


def test_a_submitted_store_root_is_refused_by_the_flow_and_nothing_is_written_there(prefect_api, tmp_path, monkeypatch):
    from flows.model_to_deployment import model_to_deployment

    monkeypatch.setenv("PREFECT__RUNTIME__DEPLOYMENT__ID", "6f1c2c3e-0000-4000-8000-000000000026")
    monkeypatch.setenv("ENGINEFORGE_STORE", str(tmp_path / "worker-store"))
    elsewhere = tmp_path / "elsewhere"
    state = model_to_deployment(recipe_yaml=RECIPE, store_root=str(elsewhere), return_state=True)
    assert state.is_failed() and not state.is_crashed(), state
    assert f"store_root {elsewhere}: a submitted run uses this worker's store" in state.message
    assert not elsewhere.exists()


def test_the_workers_own_store_root_is_accepted(tmp_path, monkeypatch):
    from engineforge.orchestration.submission import store_root_for_run

    monkeypatch.setenv("PREFECT__RUNTIME__DEPLOYMENT__ID", "6f1c2c3e-0000-4000-8000-000000000026")
    monkeypatch.setenv("ENGINEFORGE_STORE", str(tmp_path / "worker-store"))
    assert store_root_for_run(None) == str(tmp_path / "worker-store")
    assert store_root_for_run(str(tmp_path / "worker-store")) == str(tmp_path / "worker-store")
    monkeypatch.delenv("PREFECT__RUNTIME__DEPLOYMENT__ID")  # `engineforge run --store`: the user's own
    assert store_root_for_run(str(tmp_path / "mine")) == str(tmp_path / "mine")


def test_a_refused_recipe_ends_failed_with_its_reason_not_crashed(prefect_api):
    from flows.model_to_deployment import model_to_deployment

    state = model_to_deployment(recipe_yaml="name: Bad Name\nmodel:\n  source: synthetic:tiny\n", return_state=True)
    assert state.is_failed() and not state.is_crashed(), state
    assert "<recipe>:1: name:" in state.message, state.message
