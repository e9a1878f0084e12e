"""The LLM API options a TensorRT-LLM user tunes: typed in the recipe (trtllm.llm_api, TensorRT-LLM's own
names), merged into the options file, and swept by their dotted paths. Only files are checked here;
TensorRT-LLM is not run (the doubles stand in elsewhere)."""

import pytest
import yaml
from pathlib import Path

from engineforge.errors import UserError
from engineforge.recipe.file import RecipeError, load_recipe, parse_recipe
from engineforge.sweep.expand import expand
from engineforge.trtllm.options import llm_api_options

REPO = Path(__file__).resolve().parents[3]
KNOBS = REPO / "recipes" / "trtllm-llama-knobs-sweep.yaml"
HEAD = "name: k\nmodel:\n  source: synthetic:tiny-llama\nruntime: trtllm\ntrtllm:\n  version: 1.3.0rc30\n  llm_api:\n"


def test_typed_options_and_free_ones_merge_into_the_file_beside_what_build_and_serve_set():
    recipe = parse_recipe(HEAD + "    enable_attention_dp: true\n    kv_cache_config: {enable_block_reuse: false}\n"
                          "    moe_config: {backend: CUTLASS}\n    speculative_config: {decoding_type: NGram, max_draft_len: 4}\n"
                          "    print_iter_log: true\nbuild:\n  kv_cache_dtype: fp8\n")
    options = llm_api_options(recipe)
    assert options["kv_cache_config"] == {"free_gpu_memory_fraction": 0.9, "dtype": "fp8", "enable_block_reuse": False}
    assert options["enable_attention_dp"] is True and options["moe_config"] == {"backend": "CUTLASS"}
    assert options["speculative_config"] == {"decoding_type": "NGram", "max_draft_len": 4} and options["print_iter_log"] is True
    assert "enable_chunked_prefill" not in options  # unset: TensorRT-LLM's default, not written


@pytest.mark.parametrize(("body", "where"), [
    ("    enable_chunked_prefill: 1\n", "trtllm.llm_api.enable_chunked_prefill: must be true or false"),
    ("    cuda_graph_config: {batch_sizes: [0, 8]}\n", "trtllm.llm_api.cuda_graph_config.batch_sizes.0: must be an integer from 1 to 65536 (got 0)"),
    ("    scheduler_config: {capacity_scheduler_policy: FIFO}\n", "trtllm.llm_api.scheduler_config.capacity_scheduler_policy: must be one of"),
    ("    kv_cache_config: {free_gpu_memory_fraction: 0.5}\n",
     "trtllm.llm_api.kv_cache_config.free_gpu_memory_fraction: engineforge writes it from serve.kv_cache_free_gpu_memory_fraction"),
    ("    tensor_parallel_size: 2\n", "trtllm.llm_api.tensor_parallel_size: engineforge writes it from parallel.tensor"),
])
def test_a_wrong_typed_option_is_one_line_naming_it(body, where):
    with pytest.raises(RecipeError) as error:
        parse_recipe(HEAD + body, "r.yaml")
    assert len(error.value.problems) == 1 and where in error.value.problems[0]


def test_two_llm_api_knobs_sweep_by_dotted_path():
    variants = expand(load_recipe(KNOBS))
    assert [v.name for v in variants] == ["chunked-pad", "chunked-no-pad", "no-chunked-pad", "no-chunked-no-pad"]
    for variant in variants:
        options = llm_api_options(variant.recipe)
        assert options["enable_chunked_prefill"] == variant.overrides["trtllm.llm_api.enable_chunked_prefill"]
        assert options["cuda_graph_config"] == {"batch_sizes": [1, 2, 4, 8, 16, 32, 64],
                                                "enable_padding": variant.overrides["trtllm.llm_api.cuda_graph_config.enable_padding"]}
        assert parse_recipe(variant.yaml_text()).trtllm == variant.recipe.trtllm  # what a child flow run receives


def sweep(matrix: str):
    return expand(parse_recipe(HEAD + "    stream_interval: 2\nsweep:\n  matrix:\n" + matrix))


def test_an_option_the_recipe_leaves_unset_is_swept_by_its_path_and_checked_against_the_version():
    variants = sweep("    trtllm.llm_api.moe_config.backend: [CUTLASS, TRTLLM]\n    trtllm.llm_api.max_stats_len: [100]\n")
    assert [llm_api_options(v.recipe)["moe_config"] for v in variants] == [{"backend": "CUTLASS"}, {"backend": "TRTLLM"}]
    with pytest.raises(UserError) as error:
        sweep("    trtllm.llm_api.moe_config.backend: [CUTLASS, WIDEEP]\n")
    assert str(error.value).startswith("sweep variant backendwideep: trtllm.llm_api.moe_config.backend: 'WIDEEP' is not one of")
    with pytest.raises(UserError, match="sweep variant .*: trtllm.llm_api.sampler_type: TensorRT-LLM 1.3.0rc30 has no such"):
        sweep("    trtllm.llm_api.sampler_type: [TRTLLMSampler]\n")


def test_the_version_itself_is_sweepable():
    variants = sweep("    trtllm.version: [1.2.1, 1.3.0rc30]\n")
    assert [v.recipe.trtllm.version for v in variants] == ["1.2.1", "1.3.0rc30"]
    assert yaml.safe_load(variants[0].yaml_text())["trtllm"]["version"] == "1.2.1"
