"""The validate stage hands every load setting of the recipe to the load generator."""

from engineforge.loadgen import BenchConfig
from engineforge.recipe.schema import ValidateSpec
from engineforge.recipe.file import parse_recipe
from engineforge.runtimes import get_runtime
from engineforge.stages.validate import bench_config

RECIPE = """name: bench-config
model:
  source: synthetic:bench-config
runtime: transformers
validate:
  api: chat
  requests: 5
  concurrency: 3
  request_rate: 2.5
  warmup_requests: 0
  max_tokens: 7
  ignore_eos: false
  prompts: [hello]
  timeout_s: 99
"""


def test_every_validate_field_the_load_generator_knows_is_passed_through():
    recipe = parse_recipe(RECIPE)
    config = bench_config(recipe, get_runtime(recipe.runtime), "http://127.0.0.1:1", "/models/m")
    shared = set(ValidateSpec.model_fields) & set(BenchConfig.model_fields)
    assert {"request_rate", "concurrency", "requests", "max_tokens", "api"} <= shared
    spec = recipe.validate_
    assert {name: getattr(config, name) for name in shared} == {name: getattr(spec, name) for name in shared}
    assert (config.endpoint, config.model) == ("http://127.0.0.1:1", "/models/m")
