"""The TensorRT-LLM version as a recipe fact (`trtllm.version`): what it chooses (flags, image, checks,
keys, the lock file) and the engine path fenced to 1.2.x. TensorRT-LLM itself is not run here (it
cannot be installed): the doubles in tests/doubles stand in where a command is started."""

import pytest
from trtllm_helpers import use_doubles

from engineforge.errors import UserError
from engineforge.artifacts.lockfile import lock_core
from engineforge.recipe.file import RecipeError, parse_recipe
from engineforge.runtimes import get_runtime
from engineforge.runtimes.trtllm.serve import pytorch_serve_argv
from engineforge.stages.build import build_key
from engineforge.stages.dry_run import dry_run
from engineforge.stage_result import StageResult

RC = "1.3.0rc30"


def recipe(runtime="trtllm", version=None, extra=""):
    target = f"trtllm:\n  version: {version}\n" if version else ""
    return parse_recipe(f"name: v\nmodel:\n  source: synthetic:tiny-llama\nruntime: {runtime}\n{target}{extra}", "r.yaml")


def problems(text):
    with pytest.raises(RecipeError) as error:
        parse_recipe(text, "r.yaml")
    return error.value.problems


def test_a_trtllm_recipe_targets_1_2_1_unless_it_names_a_version():
    assert recipe().trtllm.version == "1.2.1"
    assert recipe(version=RC).trtllm.version == RC
    assert recipe("transformers").trtllm is None  # no TensorRT-LLM, no version


def test_a_version_engineforge_does_not_accept_is_one_line_naming_the_field_and_the_accepted_values():
    for version in ("1.4.0rc0", "1.2.0", "'1.2'"):
        found = problems(f"name: v\nmodel:\n  source: synthetic:tiny-llama\nruntime: trtllm\ntrtllm:\n  version: {version}\n")
        assert found == ["r.yaml:6: trtllm.version: must be one of '1.2.1' or '1.3.0rc30'"]


def test_the_trtllm_section_needs_a_tensorrt_llm_runtime():
    found = problems("name: v\nmodel:\n  source: synthetic:tiny-llama\ntrtllm:\n  version: 1.2.1\n")
    assert len(found) == 1 and "trtllm.version: the trtllm section needs runtime trtllm or trtllm-engine" in found[0]


def test_trtllm_engine_is_refused_for_a_version_without_trtllm_build_in_one_line_naming_the_way_forward():
    found = problems(f"name: v\nmodel:\n  source: synthetic:tiny-llama\nruntime: trtllm-engine\ntrtllm:\n  version: {RC}\n")
    assert len(found) == 1 and "\n" not in found[0]
    assert found[0].startswith("r.yaml:6: trtllm.version: TensorRT-LLM 1.3.0rc30 has no trtllm-build")
    assert "use runtime: trtllm" in found[0]
    assert recipe("trtllm-engine").trtllm.version == "1.2.1"  # the 1.2.x engine path stays as it was


@pytest.mark.parametrize(("version", "flag"), [("1.2.1", "--extra_llm_api_options"), (RC, "--config")])
def test_the_options_file_flag_follows_the_version(version, flag):
    argv = pytorch_serve_argv(recipe(version=version), "/m", "/m/opts.yaml", "127.0.0.1", 8000)
    assert argv[argv.index("/m/opts.yaml") - 1] == flag
    assert {"--config", "--extra_llm_api_options"} & set(argv) == {flag}


@pytest.mark.parametrize("version", ["1.2.1", RC])
def test_the_serving_image_is_the_release_image_of_the_recipe_version(version):
    assert get_runtime("trtllm").image_base(recipe(version=version), None) == f"nvcr.io/nvidia/tensorrt-llm/release:{version}"


def test_a_worker_of_another_version_is_refused_before_any_work(monkeypatch):
    use_doubles(monkeypatch)  # the doubles stand for TensorRT-LLM 1.2.1
    get_runtime("trtllm").check_available(recipe(version="1.2.1"))
    with pytest.raises(UserError) as error:
        get_runtime("trtllm").check_available(recipe(version=RC))
    message = str(error.value)
    assert "\n" not in message and message.startswith("trtllm.version is 1.3.0rc30, but this worker has TensorRT-LLM 1.2.1")
    assert "nvcr.io/nvidia/tensorrt-llm/release:1.3.0rc30" in message


def test_the_version_and_the_llm_api_options_enter_the_build_key_and_the_lock_file():
    model = StageResult(stage="download", status="ran", key="m" * 64, outputs={})
    runtime = get_runtime("trtllm")
    keys = {build_key(recipe(version=v), model, runtime) for v in ("1.2.1", RC)}
    chunked = recipe(extra="trtllm:\n  llm_api:\n    enable_chunked_prefill: true\n")
    assert len(keys | {build_key(chunked, model, runtime)}) == 3
    assert lock_core(recipe(version=RC), {}, {})["tensorrt_llm_target"] == RC
    assert "tensorrt_llm_target" not in lock_core(recipe("transformers"), {}, {})


def test_the_dry_run_names_the_version_its_image_flag_and_definitions():
    build = next(s for s in dry_run(recipe(version=RC))["stages"] if s["stage"] == "build")
    assert build["notes"]["tensorrt_llm_version"] == RC
    assert build["notes"]["tensorrt_llm_image"] == "nvcr.io/nvidia/tensorrt-llm/release:1.3.0rc30"
    assert build["notes"]["options_flag"] == "--config"
    assert "trtllm-serve-config.schema.json" in build["notes"]["options_checked_against"]
    validate = next(s for s in dry_run(recipe(version=RC))["stages"] if s["stage"] == "validate")
    assert "--config" in validate["commands"][0]["argv"]
