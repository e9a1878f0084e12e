from pathlib import Path

import pytest
from planner_helpers import model_config, recipe

from engineforge.planner.config_source import load_model_config
from engineforge.planner.memory import (
    GIB,
    MemoryEstimate,
    Precision,
    ServingLimits,
    kv_cache_bytes,
    weight_bytes,
)
from engineforge.model.shape import ModelShape
from engineforge.recipe.parallel_layout import ParallelLayout
from engineforge.recipe.schema import SyntheticModel


def limits(batch: int, seq: int) -> ServingLimits:
    return ServingLimits(max_batch_size=batch, max_seq_len=seq, max_input_len=seq // 2)


def test_kv_cache_term_matches_the_formula_worked_by_hand():
    shape = ModelShape.from_config(model_config("llama-3.1-70b"))
    precision = Precision.resolve(shape, "auto", "fp8")
    # Llama 3.1 70B, tp=2 pp=3, 16 sequences of 4096 tokens, fp8 KV (1 byte):
    # layers on the fullest stage = ceil(80 / 3) = 27; KV heads per rank = 8 / 2 = 4; head_dim = 8192 / 64 = 128
    # 2 (K and V) * 27 * 4 * 128 * 16 * 4096 * 1 = 1,811,939,328 bytes
    assert kv_cache_bytes(shape, ParallelLayout(2, 3, 1), limits(16, 4096), precision) == 1_811_939_328


def test_kv_heads_are_duplicated_when_tp_exceeds_them():
    shape = ModelShape.from_config(model_config("llama-3.1-70b"))
    precision = Precision.resolve(shape)  # bf16 from the config: 2 bytes
    # tp=16 > 8 KV heads: each rank holds one (duplicated) head, not half of one.
    # 2 * 80 layers * 1 head * 128 * 8 sequences * 512 tokens * 2 bytes = 167,772,160 bytes
    assert kv_cache_bytes(shape, ParallelLayout(16, 1, 1), limits(8, 512), precision) == 167_772_160


def test_weights_split_over_tp_and_pp_with_the_extra_layer_on_the_first_stage():
    shape = ModelShape.from_config(model_config("llama-3.1-70b"))
    precision = Precision.resolve(shape)
    whole = weight_bytes(shape, ParallelLayout(1, 1, 1), precision)
    assert whole == shape.total_params() * 2
    assert weight_bytes(shape, ParallelLayout(4, 2, 1), precision) == pytest.approx(whole / 8)
    # 80 layers over 3 stages: the first holds 27, not 80 / 3.
    layers = shape.num_layers * shape.layer_dense_params() * 2
    outer = shape.outer_params() * 2
    assert weight_bytes(shape, ParallelLayout(1, 3, 1), precision) == pytest.approx(layers * 27 / 80 + outer / 3)


def test_experts_per_rank_follow_ep_and_moe_tp():
    shape = ModelShape.from_config(model_config("mixtral-8x7b"))
    precision = Precision.resolve(shape)
    # moe_tp * ep = tp: with tp 8, ep 8 gives one whole expert per rank and ep 1 an eighth of all eight;
    # the bytes held are the same, the bytes one token reads are not.
    held = {ep: weight_bytes(shape, ParallelLayout(8, 1, ep), precision) for ep in (1, 2, 4, 8)}
    assert max(held.values()) == pytest.approx(min(held.values()))
    read = {ep: weight_bytes(shape, ParallelLayout(8, 1, ep), precision, experts_read=2) for ep in (1, 8)}
    assert read[8] > read[1]


def test_fp8_checkpoint_halves_decoder_weights_only():
    config = model_config("llama-3.1-8b") | {"quantization_config": {"quant_method": "fp8"}}
    shape = ModelShape.from_config(config)
    precision = Precision.resolve(shape)
    layers = shape.num_layers * shape.layer_dense_params()
    assert weight_bytes(shape, ParallelLayout(1, 1, 1), precision) == layers * 1 + shape.outer_params() * 2


def test_unmodelled_quantization_is_noted():
    shape = ModelShape.from_config(model_config("llama-3.1-8b") | {"quantization_config": {"quant_method": "awq"}})
    assert any("awq" in note for note in Precision.resolve(shape).notes)


def test_serving_fraction_applies_to_memory_left_after_weights_and_activations():
    estimate = MemoryEstimate(
        weights=50 * GIB, kv_cache=9 * GIB, activations=2 * GIB, capacity=80 * GIB, kv_fraction=0.5, kv_per_sequence=GIB
    )
    assert estimate.kv_budget == pytest.approx(14 * GIB)  # 0.5 * (80 - 50 - 2)
    assert estimate.headroom == pytest.approx(5 * GIB)
    assert estimate.kv_sequences == 14
    assert estimate.fits
    tight = estimate.model_copy(update={"kv_cache": 16 * GIB})
    assert tight.shortfall == pytest.approx(4 * GIB)  # needs 50 + 2 + 16 / 0.5 = 84 of 80
    assert not tight.fits


SYNTHETIC = {
    "llama": SyntheticModel(hidden_size=256, intermediate_size=688, num_hidden_layers=4, num_attention_heads=8,
                            num_key_value_heads=2, vocab_size=1000),
    "llama-tied": SyntheticModel(hidden_size=256, intermediate_size=688, num_hidden_layers=4, num_attention_heads=8,
                                 num_key_value_heads=2, vocab_size=1000, tie_word_embeddings=True),
    "mixtral": SyntheticModel(architecture="mixtral", hidden_size=128, intermediate_size=344, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=2, vocab_size=600, num_local_experts=4),
}


@pytest.mark.parametrize("kind", sorted(SYNTHETIC))
def test_weight_estimate_is_within_2_percent_of_a_written_checkpoint(kind, tmp_path: Path):
    from safetensors import safe_open

    from engineforge.sources.synthetic import write_synthetic_model

    write_synthetic_model(SYNTHETIC[kind], tmp_path, dtype="bfloat16")
    # The planner reads the written config.json the way it reads any local model directory.
    config = load_model_config(recipe(source=str(tmp_path)))
    shape = ModelShape.from_config(config, kind)
    estimate = weight_bytes(shape, ParallelLayout(1, 1, 1), Precision.resolve(shape))

    files = sorted(tmp_path.glob("*.safetensors"))
    on_disk = sum(path.stat().st_size for path in files)
    tensor_bytes = 0
    for path in files:
        with safe_open(str(path), framework="pt") as handle:
            for name in handle.keys():
                tensor = handle.get_tensor(name)
                tensor_bytes += tensor.numel() * tensor.element_size()
    print(f"{kind}: estimate {estimate:.0f} B, tensors {tensor_bytes} B, files {on_disk} B, "
          f"{(estimate - on_disk) / on_disk:+.3%} of the files")
    assert on_disk > 1_000_000  # a real checkpoint of a few MB, not an empty file
    assert abs(estimate - on_disk) / on_disk < 0.02
    assert estimate == tensor_bytes  # the count itself is exact; the files add only their JSON headers


@pytest.mark.parametrize("fmt, bytes_per_weight", [("fp8", 1), ("int8_sq", 1), ("int4_awq", 0.5 + 2 / 128),
                                                  ("w4a8_awq", 0.5 + 2 / 128), ("nvfp4", 0.5 + 1 / 16)])
def test_a_recipes_quantize_format_sizes_the_decoder_weights(fmt, bytes_per_weight):
    from engineforge.recipe.schema import QuantizeSpec

    shape = ModelShape.from_config(model_config("llama-3.1-70b"))
    source, quantized = Precision.resolve(shape), Precision.resolve(shape, quantize=QuantizeSpec(format=fmt))
    layout = ParallelLayout(1, 1, 1)
    decoder_source = weight_bytes(shape, layout, source) - shape.outer_params() * source.dtype_bytes
    decoder_quantized = weight_bytes(shape, layout, quantized) - shape.outer_params() * quantized.dtype_bytes
    assert decoder_quantized / decoder_source == pytest.approx(bytes_per_weight / 2)  # the source is bf16
    assert quantized.kv_bytes == source.kv_bytes == 2  # kv_cache none: the model's dtype


def test_a_quantized_kv_cache_is_sized_at_its_width():
    from engineforge.recipe.schema import QuantizeSpec

    shape = ModelShape.from_config(model_config("llama-3.1-70b"))
    fp8 = Precision.resolve(shape, quantize=QuantizeSpec(format="fp8", kv_cache="fp8"))
    assert (fp8.kv_dtype, fp8.kv_bytes) == ("fp8", 1)
    assert kv_cache_bytes(shape, ParallelLayout(2, 3, 1), limits(16, 4096), fp8) == 1_811_939_328  # as worked by hand above
