"""Expanding a recipe's sweep section into variants, and refusing bad combinations before any work."""

import pytest

from engineforge.errors import UserError
from engineforge.recipe.file import parse_recipe
from engineforge.sweep.expand import expand

BASE = """name: sweep-unit
model:
  source: synthetic:sweep-unit
runtime: transformers
build:
  max_input_len: 128
  max_seq_len: 256
validate:
  requests: 4
  concurrency: 2
"""


def recipe(sweep: str):
    return parse_recipe(BASE + sweep)


def test_matrix_times_load_points_gives_every_combination_load_innermost():
    variants = expand(recipe("sweep:\n  matrix:\n    build.max_batch_size: [2, 4]\n"
                             "  load:\n    - concurrency: 1\n    - concurrency: 8\n      requests: 16\n"))
    assert [v.name for v in variants] == ["mbs2-c1", "mbs2-c8-n16", "mbs4-c1", "mbs4-c8-n16"]
    last = variants[-1].recipe
    assert (last.build.max_batch_size, last.validate_.concurrency, last.validate_.requests) == (4, 8, 16)
    assert variants[0].recipe.validate_.requests == 4  # the validate section's, where the load point says nothing
    assert all(v.recipe.sweep is None for v in variants)  # a variant is a plain recipe


def test_a_variant_is_a_recipe_file_that_parses_back_to_the_same_recipe():
    variant = expand(recipe("sweep:\n  matrix:\n    parallel.tensor: [1, 2]\n"))[1]
    assert parse_recipe(variant.yaml_text()) == variant.recipe
    assert (variant.name, variant.recipe.parallel.gpus) == ("tp2", 2)


def test_without_load_points_the_validate_load_is_the_only_one():
    variants = expand(recipe("sweep:\n  matrix:\n    serve.continuous_batching: [true, false]\n"))
    assert [v.recipe.validate_.concurrency for v in variants] == [2, 2]


def test_layouts_auto_takes_the_planned_layouts():
    variants = expand(recipe("sweep:\n  layouts: auto\n  top_k: 2\n"),
                      layouts=[{"tensor": 2, "pipeline": 1}, {"tensor": 1, "pipeline": 2}])
    assert [(v.recipe.parallel.tensor, v.recipe.parallel.pipeline) for v in variants] == [(2, 1), (1, 2)]


@pytest.mark.parametrize(("sweep", "message"), [
    ("  matrix:\n    build.max_seq_len: [64, 512]\n",
     "sweep variant msl64 (build.max_seq_len=64): build: max_input_len must not exceed max_seq_len"),
    ("  matrix:\n    build.kv_cache_dtype: [fp8, fp9]\n", "sweep variant kvfp9 (build.kv_cache_dtype=fp9): build.kv_cache_dtype"),
    ("  matrix:\n    serve.batching: [1]\n", "sweep variant batching1: serve.batching: no such recipe field"),
    ("  matrix:\n    name: [a, b]\n", "sweep.matrix.name: not a field a sweep varies"),
    ("  matrix:\n    serve.port: [1, 2]\n", "sweep.matrix.serve.port: not a field a sweep varies"),
    ("  load:\n    - concurrency: 1\n    - concurrency: 1\n", "two variants are both named c1"),
])
def test_invalid_combinations_are_refused_naming_the_variant_and_the_field(sweep, message):
    with pytest.raises(UserError) as refused:
        expand(recipe("sweep:\n" + sweep))
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_the_sweep_section_is_schema_checked_like_the_rest():
    with pytest.raises(UserError, match="sweep.objective"):
        recipe("sweep:\n  objective: fastest\n")
    with pytest.raises(UserError, match="sweep.matrix"):
        recipe("sweep:\n  matrix:\n    build.max_batch_size: []\n")


def test_listed_layouts_are_variants_named_like_the_performance_table():
    variants = expand(recipe("sweep:\n  layouts:\n    - {tensor: 1}\n    - {tensor: 4, pipeline: 2}\n"
                             "  load:\n    - concurrency: 1\n"))
    assert [(v.name, v.recipe.parallel.gpus) for v in variants] == [("tp1-c1", 1), ("tp4-pp2-c1", 8)]
    with pytest.raises(UserError, match="keep one of them"):
        expand(recipe("sweep:\n  layouts: [{tensor: 2}]\n  matrix:\n    parallel.tensor: [1]\n"))


def test_request_rate_load_points_are_open_loop_variants_capped_by_concurrency():
    variants = expand(recipe("sweep:\n  load:\n    - request_rate: 0.5\n    - request_rate: 4\n      concurrency: 8\n"
                             "    - concurrency: 4\n"))
    assert [v.name for v in variants] == ["r0.5", "c8-r4", "c4"]
    loads = [(v.recipe.validate_.concurrency, v.recipe.validate_.request_rate) for v in variants]
    assert loads == [(2, 0.5), (8, 4.0), (4, None)]  # concurrency defaults to the validate section's


def test_a_load_point_without_concurrency_or_rate_is_refused():
    with pytest.raises(UserError, match="sweep.load.0.*concurrency, request_rate or both"):
        recipe("sweep:\n  load:\n    - requests: 4\n")


QUANTIZED = BASE + """quantize:
  format: int4_awq
  calibration: {samples: 4, eval_samples: 2}
  gates: {min_token_agreement: 0.7}
"""


def test_quantize_format_varies_the_quantization_and_none_is_the_unquantized_model():
    variants = expand(parse_recipe(QUANTIZED + "sweep:\n  matrix:\n    quantize.format: [none, fp8, int4_awq]\n"
                                   "  load:\n    - concurrency: 4\n"))
    assert [v.name for v in variants] == ["unquantized-c4", "fp8-c4", "int4-awq-c4"]
    assert variants[0].recipe.quantize is None
    fp8 = variants[1].recipe.quantize
    assert fp8.format == "fp8" and fp8.calibration.samples == 4 and fp8.gates.min_token_agreement == 0.7  # the rest kept
    assert parse_recipe(variants[2].yaml_text()) == variants[2].recipe


def test_quantize_format_on_a_recipe_without_a_quantize_section_takes_the_defaults():
    variants = expand(recipe("sweep:\n  matrix:\n    quantize.format: [none, fp8]\n"))
    # unquantized: the recipe as it was, sweep aside (its repeats now the validate section's)
    assert variants[0].recipe == parse_recipe(BASE + "  repeats: 3\n")
    assert variants[1].recipe.quantize.format == "fp8" and variants[1].recipe.quantize.kv_cache == "none"


def test_an_unknown_quantize_format_names_the_variant():
    with pytest.raises(UserError, match=r"sweep variant fp4 \(quantize.format=fp4\): quantize.format"):
        expand(recipe("sweep:\n  matrix:\n    quantize.format: [fp8, fp4]\n"))


def test_sweep_plan_refuses_a_format_the_runtime_cannot_serve_before_any_work():
    from engineforge.sweep.plan import plan_sweep

    trtllm = BASE.replace("runtime: transformers", "runtime: trtllm")
    with pytest.raises(UserError, match="sweep variant int8-sq: quantize.format int8_sq: TensorRT-LLM's PyTorch backend"):
        plan_sweep(parse_recipe(trtllm + "sweep:\n  matrix:\n    quantize.format: [fp8, int8_sq]\n"), gpu="H100-SXM")


def test_repeats_order_and_cooldown_reach_every_variant_as_its_validate_settings():
    default = expand(recipe("sweep:\n  matrix:\n    build.max_batch_size: [2, 4]\n"))
    assert {(v.recipe.validate_.repeats, v.recipe.validate_.restart_server, v.recipe.validate_.cooldown_s)
            for v in default} == {(3, True, 0.0)}  # three measurements, each on a fresh server
    blocked = expand(recipe("sweep:\n  repeats: 5\n  order: blocked\n  cooldown_s: 2.5\n"))[0].recipe.validate_
    assert (blocked.repeats, blocked.restart_server, blocked.cooldown_s) == (5, False, 2.5)
    assert parse_recipe(expand(recipe("sweep:\n  repeats: 1\n"))[0].yaml_text()).validate_.repeats == 1


@pytest.mark.parametrize("text, message", [
    ("sweep:\n  repeats: 0\n", "sweep.repeats: must be an integer from 1 to 100 (got 0)"),
    ("sweep:\n  repeats: 2.5\n", "sweep.repeats"),
    ("sweep:\n  order: random\n", "sweep.order: must be one of 'interleaved' or 'blocked'"),
    ("sweep:\n  cooldown_s: -1\n", "sweep.cooldown_s: must be a number from 0"),
    ("  repeats: 2\nsweep:\n  repeats: 3\n", "validate.repeats: a sweep sets it for every variant; use sweep.repeats"),
])
def test_bad_repeat_settings_are_refused_in_one_line_naming_the_field(text, message):
    with pytest.raises(UserError) as refused:
        parse_recipe(BASE + text)
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_validate_repeats_on_a_single_run_is_checked_like_the_rest():
    single = parse_recipe(BASE + "  repeats: 4\n  restart_server: false\n  cooldown_s: 1\n").validate_
    assert (single.repeats, single.restart_server, single.cooldown_s) == (4, False, 1.0)
    with pytest.raises(UserError, match="validate.repeats: must be an integer from 1 to 100"):
        parse_recipe(BASE + "  repeats: 101\n")
