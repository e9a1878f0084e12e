"""A recorded validate result's context: a recipe with gates and its run in a real MLflow SQLite store."""

import pytest

from engineforge import tracking
from engineforge.recipe_file import parse_recipe
from engineforge.runtimes import get_runtime
from engineforge.stages.context import RunContext


@pytest.fixture
def gated_run(tmp_path, monkeypatch):
    """`start(gates)`: (recipe, ctx) for a recipe whose validate.gates are the YAML lines `gates`, its MLflow run started."""

    def start(gates: str):
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        text = f"name: gated\nmodel:\n  source: synthetic:tiny-llama\nvalidate:\n  gates:\n{gates}"
        recipe = parse_recipe(text)
        _, run_id = tracking.start_run(recipe, text)
        return recipe, RunContext(runtime=get_runtime("transformers"), store_root=str(tmp_path / "store"),
                                  tracking_uri=uri, run_id=run_id)

    return start
