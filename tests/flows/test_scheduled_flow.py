"""The flow behind prefect.yaml's scheduled deployments: a recipe file of the checkout, by path."""

import pytest

from engineforge.errors import UserError
from flows.scheduled import scheduled_recipe

pytestmark = pytest.mark.integration


def test_a_scheduled_recipe_runs_from_its_path(prefect_api, tiny_model_dir, mlflow_uri, monkeypatch, tmp_path, make_recipe):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    monkeypatch.setenv("ENGINEFORGE_STORE", str(tmp_path / "store"))
    text, _ = make_recipe(str(tiny_model_dir), name="scheduled-test", validate="validate:\n  enabled: false\n",
                          package="package:\n  enabled: false\n")
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "nightly.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)  # the worker's checkout

    summary = scheduled_recipe(recipe="recipes/nightly.yaml")

    assert summary["recipe"] == "scheduled-test" and summary["status"] == "completed"
    assert {stage["stage"]: stage["status"] for stage in summary["stages"]}["build"] == "ran"
    with pytest.raises(UserError, match="recipes/missing.yaml: no such recipe file"):
        scheduled_recipe(recipe="recipes/missing.yaml")
