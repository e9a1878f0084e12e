"""Stage.skip_reason: the one rule for whether a stage applies, used by the flow and by --dry-run."""

import pytest

from engineforge.recipe.file import parse_recipe
from engineforge.runtimes import get_runtime
from engineforge.stages.pipeline import NAMES, STAGES
from engineforge.stages.dry_run import dry_run

BASE = "name: skip-test\nmodel:\n  source: synthetic:tiny-llama\nruntime: {runtime}\n"


def recipe(runtime="transformers", extra=""):
    return parse_recipe(BASE.format(runtime=runtime) + extra)


def reasons(parsed):
    return {stage.name: stage.skip_reason(parsed, get_runtime(parsed.runtime)) for stage in STAGES}


NO_QUANTIZE = "no quantize section in the recipe"


def test_every_stage_but_quantize_applies_to_the_engine_runtime_by_default():
    assert reasons(recipe("trtllm-engine")) == dict.fromkeys(NAMES) | {"quantize": NO_QUANTIZE}


def test_quantize_applies_when_the_recipe_asks_for_it():
    assert reasons(recipe(extra="quantize:\n  format: int4_awq\n"))["quantize"] is None


def test_a_stage_the_runtime_does_not_use_is_skipped_with_the_runtimes_reason():
    found = reasons(recipe("transformers"))
    assert found["shard"] == get_runtime("transformers").skip_reason("shard")
    assert {stage for stage, reason in found.items() if reason} == {"shard", "quantize"}


@pytest.mark.parametrize("section, stage, field", [
    ("validate:\n  enabled: false\n", "validate", "validate.enabled"),
    ("package:\n  enabled: false\n", "package", "package.enabled"),
    ("tracking:\n  register_model: false\n", "register", "tracking.register_model"),
])
def test_a_switched_off_stage_names_its_switch(section, stage, field):
    assert reasons(recipe(extra=section))[stage] == f"{field} is false"


@pytest.mark.parametrize("extra", ["package:\n  enabled: false\n", "quantize:\n  format: int4_awq\n"])
def test_the_dry_run_skips_exactly_what_the_flow_skips(extra):
    parsed = recipe(extra=extra)
    planned = {stage["stage"]: stage for stage in dry_run(parsed)["stages"]}
    expected = {stage: reason for stage, reason in reasons(parsed).items() if reason != NO_QUANTIZE}
    assert list(planned) == list(expected)  # a recipe without quantization has no quantize stage to show
    assert {stage: plan["reason"] for stage, plan in planned.items()} == expected
