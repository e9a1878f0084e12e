"""compose.yaml for a disaggregated deployment: the same worker command lines as the worker runs."""

from __future__ import annotations

from pathlib import Path

import yaml

from engineforge.recipe.file import load_recipe
from engineforge.runtimes.trtllm import compose, disagg

RECIPE = Path(__file__).parents[3] / "recipes" / "trtllm-llama-disagg.yaml"
IMAGE = "127.0.0.1:5000/engineforge/x@sha256:" + "a" * 64


def _recipe(context: dict, generation: dict):
    recipe = load_recipe(RECIPE)
    spec = recipe.serve.disaggregated
    roles = {"context": spec.context.model_copy(update=context),
             "generation": spec.generation.model_copy(update=generation)}
    serve = recipe.serve.model_copy(update={"disaggregated": spec.model_copy(update=roles)})
    return recipe.model_copy(update={"serve": serve})


def _files(recipe) -> dict:
    return {name: yaml.safe_load(text) for name, text in compose.compose_files(recipe, IMAGE).items()}


def test_compose_wires_context_and_generation_servers_to_the_front():
    files = _files(_recipe({"instances": 2}, {"instances": 1, "tp": 2}))
    services = files["compose.yaml"]["services"]
    assert list(services) == ["context-0", "context-1", "generation-0", "front"]
    gpus = [services[n]["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"]
            for n in ("context-0", "context-1", "generation-0")]
    assert gpus == [["0"], ["1"], ["2", "3"]]
    front = files["disagg_config.yaml"]
    assert front["context_servers"] == {"num_instances": 2, "urls": ["context-0:8001", "context-1:8001"]}
    assert front["generation_servers"]["urls"] == ["generation-0:8001"]
    assert files["context_options.yaml"]["disable_overlap_scheduler"] is True
    assert files["generation_options.yaml"]["cache_transceiver_config"]["backend"] == "UCX"
    assert services["front"]["entrypoint"][:2] == ["trtllm-serve", "disaggregated"]
    assert set(services["front"]["depends_on"]) == {"context-0", "context-1", "generation-0"}
    assert all(s["image"] == IMAGE for s in services.values())


def test_compose_workers_run_the_workers_command_line_with_each_roles_layout():
    recipe = _recipe({"tp": 2, "ep": 2}, {"tp": 1, "pp": 2})
    services = _files(recipe)["compose.yaml"]["services"]
    ran = {c.role: c.argv for c in disagg.commands(recipe, "/opt/engineforge/model", "/etc/engineforge",
                                                    "0.0.0.0", 8000, [8001, 8001])}
    for name in ("context-0", "generation-0"):
        assert services[name]["entrypoint"] == ran[name]
    context = services["context-0"]["entrypoint"]
    assert context[context.index("--ep_size") + 1] == "2" and context[context.index("--tp_size") + 1] == "2"
    generation = services["generation-0"]["entrypoint"]
    assert generation[generation.index("--pp_size") + 1] == "2"
