import re

import pytest
from planner_helpers import model_config, recipe

from engineforge.errors import UserError
from engineforge.gpus import find_gpu
from engineforge.planner import plan, resolve_parallel
from engineforge.planner.memory import GIB
from engineforge.planner.planner import (
    EP_SPLIT,
    EXPERTS,
    GPUS,
    HEADS,
    KV_HEADS,
    LAYERS,
    MEMORY,
    POOL,
)

SMALL = {"max_batch_size": 8, "max_input_len": 1024, "max_seq_len": 2048}
LARGE = {"max_batch_size": 64, "max_input_len": 4096, "max_seq_len": 8192}


def layout(result, tp, pp=1, ep=1):
    return next(c for c in result.candidates if (c.tp, c.pp, c.ep) == (tp, pp, ep))


# Acceptance: the public configs on 80 GB GPUs.

@pytest.mark.parametrize("gpu", ["H100-SXM", "A100-80GB"])
def test_llama_8b_bf16_fits_one_80gb_gpu(gpu):
    result = resolve_parallel(recipe(build=SMALL), model_config("llama-3.1-8b"), gpu=gpu, gpus=1)
    assert (result.tp, result.pp, result.ep) == (1, 1, 1)
    assert result.chosen.feasible and result.chosen.headroom_gib > 0
    assert result.precision.dtype == "bfloat16"  # dtype auto: the config's torch_dtype


@pytest.mark.parametrize("gpu", ["H100-SXM", "A100-80GB"])
def test_llama_70b_bf16_needs_two_80gb_gpus_when_the_kv_budget_allows(gpu):
    config = model_config("llama-3.1-70b")
    result = resolve_parallel(recipe(build=SMALL), config, gpu=gpu, gpus=8)
    single = layout(result, 1)
    assert not single.feasible and single.violations == [MEMORY]
    assert single.weights_gib > find_gpu(gpu).memory_gib  # the weights alone overflow one card
    assert result.tp >= 2 and result.tp * result.pp == 2
    assert result.chosen.memory_per_gpu_gib < find_gpu(gpu).memory_gib


def test_llama_70b_large_kv_budget_pushes_past_two_gpus():
    result = resolve_parallel(recipe(build=LARGE), model_config("llama-3.1-70b"), gpu="H100-SXM", gpus=8)
    assert layout(result, 2).violations == [MEMORY]
    assert result.tp * result.pp > 2
    assert result.chosen.kv_cache_gib * result.tp * result.pp > 2 * find_gpu("H100-SXM").memory_gib / 2


def test_llama_70b_on_one_gpu_says_what_is_short_and_by_how_much():
    with pytest.raises(UserError) as error:
        resolve_parallel(recipe(build=SMALL), model_config("llama-3.1-70b"), gpu="H100-SXM", gpus=1)
    message = str(error.value)
    assert "no feasible layout" in message and "1 x H100-SXM" in message
    result = plan(recipe(build=SMALL), model_config("llama-3.1-70b"), gpu="H100-SXM", gpus=1)
    assert f"short {result.candidates[0].short_gib:.1f} GiB" in message
    assert "--gpus" in message


def test_constraint_breaking_layouts_are_listed_with_the_constraint_named():
    result = plan(recipe(), model_config("llama-3.1-70b"), gpu="H100-SXM", gpus=8)
    tp3 = layout(result, 3)
    assert not tp3.feasible
    assert HEADS in tp3.violations and KV_HEADS in tp3.violations and POOL in tp3.violations
    assert "64 attention heads do not split over tp 3" in tp3.reason
    assert layout(result, 1, 3).violations == [POOL]
    assert all(c.reason.startswith("fits") for c in result.candidates if c.feasible)
    assert all(c.violations and "violates" in c.reason for c in result.candidates if not c.feasible)


def test_mixtral_expert_constraints():
    config = model_config("mixtral-8x7b")
    result = plan(recipe(), config, gpu="H100-SXM", gpus=6)
    assert EXPERTS in layout(result, 6, 1, 3).violations  # 8 experts over ep 3
    assert {c.ep for c in result.candidates if c.tp == 4 and c.pp == 1} == {1, 2, 4}  # ep ranges over divisors of tp
    with pytest.raises(UserError, match=re.escape(EP_SPLIT)):
        resolve_parallel(recipe(parallel={"tensor": 4, "pipeline": 1, "expert": 8}), config, gpu="H200", gpus=4)


def test_explicit_layout_is_returned_checked():
    result = resolve_parallel(
        recipe(parallel={"tensor": 4, "pipeline": 1}), model_config("llama-3.1-70b"), gpu="H100-SXM", gpus=8
    )
    assert (result.tp, result.pp, result.ep) == (4, 1, 1)
    assert [(c.tp, c.pp, c.ep) for c in result.candidates] == [(4, 1, 1)]
    assert result.reason.startswith("the recipe's layout, checked: fits")


@pytest.mark.parametrize(
    "parallel, constraint",
    [
        ({"tensor": 3}, HEADS),
        ({"tensor": 16}, GPUS),
        ({"tensor": 1, "expert": 2}, EXPERTS),  # a dense model has no experts to split
        ({"tensor": 1, "pipeline": 81}, LAYERS),
        ({"tensor": 1}, MEMORY),
    ],
)
def test_explicit_layout_breaking_a_constraint_is_a_user_error_naming_it(parallel, constraint):
    with pytest.raises(UserError, match=re.escape(f"violates {constraint}")):
        resolve_parallel(recipe(parallel=parallel), model_config("llama-3.1-70b"), gpu="H100-SXM", gpus=8)


def test_partial_auto_keeps_the_fixed_size():
    result = plan(recipe(parallel={"tensor": "auto", "pipeline": 2}), model_config("llama-3.1-70b"), gpu="L40S", gpus=8)
    assert {c.pp for c in result.candidates} == {2}
    assert result.pp == 2 and result.chosen.feasible


def test_throughput_prefers_tp_inside_a_node_to_pipeline_stages():
    result = resolve_parallel(recipe(build=SMALL), model_config("llama-3.1-70b"), gpu="H100-SXM", gpus=8)
    assert (result.tp, result.pp) == (2, 1)
    assert layout(result, 1, 2).feasible  # the same GPU count with pipeline stages would also fit
    assert "tensor parallel inside a node" in result.reason


def test_tp_across_nodes_is_warned_and_ranked_after_tp_inside_a_node():
    result = plan(recipe(build=LARGE), model_config("llama-3.1-70b"), gpu="A100-40GB", gpus=16, gpus_per_node=8)
    tp16 = layout(result, 16)
    assert tp16.feasible and "crosses nodes" in tp16.reason
    assert result.chosen.tp <= 8


def test_latency_objective_prefers_more_tensor_parallelism():
    config = model_config("llama-3.1-8b")
    throughput = resolve_parallel(recipe(build=SMALL), config, gpu="H100-SXM", gpus=8)
    latency = resolve_parallel(recipe(build=SMALL), config, gpu="H100-SXM", gpus=8, objective="latency")
    assert throughput.tp == 1
    assert latency.tp == 8 and latency.chosen.decode_floor_ms < throughput.chosen.decode_floor_ms


def test_latency_objective_splits_mixtral_experts_over_every_rank():
    latency = resolve_parallel(recipe(build=SMALL), model_config("mixtral-8x7b"), gpu="H100-SXM", gpus=8, objective="latency")
    assert (latency.tp, latency.ep) == (8, 1)


def test_most_kv_headroom_breaks_ties():
    result = plan(recipe(build=SMALL), model_config("mistral-nemo-12b"), gpu="H100-SXM", gpus=2)
    feasible = [c for c in result.candidates if c.feasible and c.gpus == 2]
    assert [c.headroom_gib for c in feasible] == sorted((c.headroom_gib for c in feasible), reverse=True)


def test_fp8_kv_cache_halves_the_kv_term_and_makes_long_contexts_fit():
    config = model_config("llama-3.1-8b")
    bf16 = plan(recipe(build=LARGE), config, gpu="H100-SXM", gpus=1)
    fp8 = plan(recipe(build=LARGE | {"kv_cache_dtype": "fp8"}), config, gpu="H100-SXM", gpus=1)
    assert fp8.candidates[0].kv_cache_gib == pytest.approx(bf16.candidates[0].kv_cache_gib / 2, rel=1e-3)
    assert bf16.chosen is None and bf16.candidates[0].violations == [MEMORY]
    assert fp8.chosen is not None and fp8.chosen.feasible


def test_lower_serving_fraction_leaves_less_kv_headroom():
    config = model_config("llama-3.1-8b")
    default = resolve_parallel(recipe(), config, gpu="H100-SXM", gpus=1)
    cautious = resolve_parallel(recipe(serve={"kv_cache_free_gpu_memory_fraction": 0.5}), config, gpu="H100-SXM", gpus=1)
    assert cautious.chosen.headroom_gib < default.chosen.headroom_gib


def test_apply_fills_auto_sizes_into_the_recipe():
    result = resolve_parallel(recipe(build=SMALL), model_config("llama-3.1-70b"), gpu="H100-SXM", gpus=8)
    resolved = result.apply(recipe(build=SMALL))
    assert (resolved.parallel.tensor, resolved.parallel.pipeline, resolved.parallel.expert) == (2, 1, 1)
    assert result.record()["reason"] == result.reason


def test_model_the_planner_cannot_size_still_runs_an_explicit_layout_unchecked():
    config = model_config("llama-3.1-8b") | {"model_type": "qwen3_moe", "num_experts": 128, "moe_intermediate_size": 768}
    result = resolve_parallel(recipe(parallel={"tensor": 4}), config, gpu="H100-SXM", gpus=4)
    assert (result.tp, result.pp, result.ep, result.checked) == (4, 1, 1, False)
    with pytest.raises(UserError, match="qwen3_moe"):
        resolve_parallel(recipe(), config, gpu="H100-SXM", gpus=4)


def test_no_gpu_and_no_flag_defaults_to_h100_with_a_note(monkeypatch):
    monkeypatch.setattr("engineforge.planner.planner.detect_gpus", lambda: None)
    result = plan(recipe(), model_config("llama-3.1-8b"))
    assert result.gpu.name == "H100-SXM" and result.gpus == 8
    assert any("no GPU detected" in note for note in result.notes)


@pytest.mark.parametrize(
    "arguments, message",
    [({"gpu": "X100"}, "known: H100-SXM"), ({"gpus": 0}, "--gpus 0"), ({"objective": "cost"}, "throughput, latency")],
)
def test_bad_arguments_are_user_errors(arguments, message):
    with pytest.raises(UserError, match=message):
        plan(recipe(), model_config("llama-3.1-8b"), **({"gpu": "H100"} | arguments))


def test_memory_totals_are_gib():
    result = plan(recipe(), model_config("llama-3.1-8b"), gpu="H100-SXM", gpus=1)
    chosen = result.chosen
    assert chosen.weights_gib == pytest.approx(8_030_261_248 * 2 / GIB, abs=1e-3)
    assert chosen.memory_per_gpu_gib == pytest.approx(
        chosen.weights_gib + chosen.kv_cache_gib + chosen.activations_gib, abs=2e-3
    )
