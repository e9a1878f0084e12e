"""Every LLM API options file engineforge emits, checked against the target TensorRT-LLM version's own
definitions (engineforge/trtllm/definitions/<version>.json: NVIDIA's generated JSON Schema on main for the
1.3 release candidate, the llm_args.py field list for 1.2.1; each file names its source and how it was
made), with jsonschema and an unknown-key check at the root (NVIDIA's root admits extras).
TensorRT-LLM itself is not run here: these check the files, not what TensorRT-LLM does with them."""

from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from engineforge.recipe.file import RecipeError, load_recipe, parse_recipe
from engineforge.recipe_checks import check_recipe_text
from engineforge.stages.dry_run import dry_run
from engineforge.runtimes.trtllm.disagg import CONFIG_FILE
from engineforge.trtllm.definitions import definitions, disagg_definitions, disagg_problems, problems
from engineforge.recipe.trtllm_section import ACCEPTED

REPO = Path(__file__).resolve().parents[3]
RECIPES = sorted((REPO / "recipes").glob("trtllm*.yaml"))
RC = "1.3.0rc30"


def at_version(path: Path, version: str):
    """The example recipe retargeted at `version` (its own llm_api kept), or None where the version refuses
    it: an engine recipe past 1.2.x (the refusal itself is checked here too)."""
    data = yaml.safe_load(path.read_text())
    data["trtllm"] = {**(data.get("trtllm") or {}), "version": version}
    data["sweep"] = None
    if data["runtime"] == "trtllm-engine" and version != "1.2.1":
        with pytest.raises(RecipeError, match="has no trtllm-build"):
            parse_recipe(yaml.safe_dump(data), str(path))
        return None
    return parse_recipe(yaml.safe_dump(data), str(path))


def emitted_option_files(recipe) -> dict[str, dict]:
    """Every options file of the dry run (the build's and those validation writes), by path."""
    return {name: yaml.safe_load(text) for stage in dry_run(recipe, REPO / "recipes")["stages"]
            for name, text in stage["files"].items() if name.endswith(("extra_llm_api_options.yaml", "_options.yaml"))}


def emitted_disagg_configs(recipe) -> dict[str, dict]:
    """Every disagg_config.yaml of the dry run (build, validation, compose), by path; the dry run's port
    placeholders (`<port 1>`) stand for the integers the run writes."""
    def filled(value):
        if isinstance(value, dict):
            return {key: filled(item) for key, item in value.items()}
        if isinstance(value, list):
            return [filled(item) for item in value]
        return 8000 if isinstance(value, str) and value.startswith("<port") else value

    return {name: filled(yaml.safe_load(text)) for stage in dry_run(recipe, REPO / "recipes")["stages"]
            for name, text in stage["files"].items() if name.endswith(CONFIG_FILE)}


@pytest.mark.parametrize("version", ACCEPTED)
def test_each_definitions_file_is_a_valid_json_schema_naming_its_source(version):
    table = definitions(version)
    Draft202012Validator.check_schema(table["schema"])
    assert table["version"] == version and "NVIDIA/TensorRT-LLM" in table["source"] and table["method"]


@pytest.mark.parametrize("version", ACCEPTED)
@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_every_emitted_options_file_is_defined_by_the_target_version(path, version):
    recipe = at_version(path, version)
    if recipe is None:
        return
    files = emitted_option_files(recipe)
    if recipe.runtime == "trtllm":  # the build's file; with disaggregation each role's (build, validation, compose)
        roles = {Path(name).name for name in files} - {"extra_llm_api_options.yaml"}
        assert "<build>/served/extra_llm_api_options.yaml" in files
        assert roles == ({"context_options.yaml", "generation_options.yaml"} if recipe.serve.disaggregated else set())
    for name, options in files.items():
        assert problems(options, version) == [], name
    configs = emitted_disagg_configs(recipe)  # checked against NVIDIA's disaggregated config where one was read
    assert bool(configs) == (recipe.runtime == "trtllm" and recipe.serve.disaggregated is not None)
    for name, config in configs.items():
        assert disagg_problems(config, version) == [], name
        if disagg_definitions(version) is None:  # 1.2.1: the keys of examples/disaggregated/README.md (trtllm-facts.md)
            assert set(config) == {"hostname", "port", "backend", "context_servers", "generation_servers"}, name


def test_the_disaggregated_definition_is_closed_at_the_root_and_in_each_server_block():
    table = disagg_definitions(RC)
    Draft202012Validator.check_schema(table["schema"])
    assert "NVIDIA/TensorRT-LLM" in table["source"] and "04bc3304" in table["source"] and table["method"]
    config = {"hostname": "h", "port": 8000, "backend": "pytorch",
              "context_servers": {"num_instances": 1, "urls": ["h:8001"]}, "generation_servers": {"num_instances": 1, "urls": ["h:8002"]}}
    assert disagg_problems(config, RC) == []
    assert disagg_problems({**config, "front_port": 1}, RC) == [
        "front_port: no such option (TensorRT-LLM 1.3.0rc30 disaggregated config)"]
    assert disagg_problems({**config, "context_servers": {"num_instances": 1, "hosts": []}}, RC) == [
        "context_servers.hosts: no such option (TensorRT-LLM 1.3.0rc30 disaggregated config)"]
    assert disagg_problems({**config, "generation_servers": {"num_instances": "one"}}, RC) == [
        "generation_servers.num_instances: 'one' is not of type 'integer' (TensorRT-LLM 1.3.0rc30 disaggregated config)"]
    assert disagg_problems({**config, "backend": "tensorrt"}, RC) == [
        "backend: 'tensorrt' is not one of pytorch (TensorRT-LLM 1.3.0rc30 disaggregated config)"]
    assert disagg_definitions("1.2.1") is None and disagg_problems({"anything": 1}, "1.2.1") == []


def test_the_checks_refuse_what_a_version_does_not_define():
    # The TRTLLMSampler is gone after 1.2.x (PRs 18233, 18532); NVIDIA's schema on main has no sampler_type.
    assert problems({"sampler_type": "TRTLLMSampler"}, "1.2.1") == []
    assert problems({"sampler_type": "TRTLLMSampler"}, RC) == ["sampler_type: TensorRT-LLM 1.3.0rc30 has no such LLM API option"]
    # Nested configs are closed, enums and types checked.
    assert sorted(problems({"kv_cache_config": {"enable_block_reuse": "yes", "reuse": True}}, RC)) == [
        "kv_cache_config.enable_block_reuse: 'yes' is not of type 'boolean' (TensorRT-LLM 1.3.0rc30)",
        "kv_cache_config.reuse: no such option (TensorRT-LLM 1.3.0rc30)",
    ]
    assert problems({"cache_transceiver_config": {"backend": "MOONCAKE"}}, "1.2.1") == [
        "cache_transceiver_config.backend: 'MOONCAKE' is not one of DEFAULT, UCX, NIXL, MPI (TensorRT-LLM 1.2.1)"]
    assert problems({"cache_transceiver_config": {"backend": "MOONCAKE"}}, RC) == []


def test_a_recipe_option_the_version_lacks_is_refused_before_any_work_naming_key_and_version():
    text = (f"name: v\nmodel:\n  source: synthetic:tiny-llama\nruntime: trtllm\ntrtllm:\n  version: {RC}\n"
            "  llm_api:\n    sampler_type: TRTLLMSampler\n    moe_config:\n      backend: WIDEEP\n")
    with pytest.raises(RecipeError) as error:
        check_recipe_text(text, "r.yaml", None)
    assert error.value.problems == [
        "r.yaml:8: trtllm.llm_api.sampler_type: TensorRT-LLM 1.3.0rc30 has no such LLM API option",
        "r.yaml:10: trtllm.llm_api.moe_config.backend: 'WIDEEP' is not one of AUTO, CUTLASS, CUTEDSL, CUTEDSL_FC12, "
        "TRTLLM, DEEPGEMM, DENSEGEMM, VANILLA, TRITON, MARLIN, MEGAMOE_DEEPGEMM, MEGAMOE_CUTEDSL (TensorRT-LLM 1.3.0rc30)",
    ]


def test_every_example_recipe_validates_with_its_own_version():
    for path in RECIPES:
        load_recipe(path)
        check_recipe_text(path.read_text(), str(path), path.parent)
