import json

import pytest
from planner_helpers import model_config

from engineforge.errors import UserError
from engineforge.model.shape import (
    ModelShape,
    UnsupportedModel,
    read_config,
    read_model_shape,
)

# Parameter totals the hub shows for these checkpoints (see tests/fixtures/model_configs/README.md).
PUBLISHED_PARAMS = {
    "llama-3.1-8b": 8_030_261_248,
    "llama-3.1-70b": 70_553_706_496,
    "mixtral-8x7b": 46_702_792_704,
    "mistral-nemo-12b": 12_247_782_400,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_parameter_count_matches_the_published_checkpoint(name):
    assert ModelShape.from_config(model_config(name), name).total_params() == PUBLISHED_PARAMS[name]


def test_explicit_head_dim_wins_over_hidden_over_heads():
    shape = ModelShape.from_config(model_config("mistral-nemo-12b"))
    assert shape.head_dim == 128 != shape.hidden_size // shape.num_heads


def test_mixtral_is_a_mixture_of_experts_with_top2_routing():
    shape = ModelShape.from_config(model_config("mixtral-8x7b"))
    assert (shape.num_experts, shape.experts_per_token) == (8, 2)
    # Mixtral's "12.9B active" figure: two of eight experts per token.
    assert 12.8e9 < shape.active_params() < 13.0e9


def test_missing_fields_are_named_all_at_once():
    config = model_config("llama-3.1-8b")
    del config["hidden_size"], config["vocab_size"]
    with pytest.raises(UserError, match="missing hidden_size, vocab_size"):
        ModelShape.from_config(config, "hf://meta-llama/Llama-3.1-8B")


def test_non_integer_field_is_named():
    config = model_config("llama-3.1-8b") | {"num_hidden_layers": "32"}
    with pytest.raises(UserError, match='num_hidden_layers is "32"; it must be an integer from 1 to 1,024'):
        ModelShape.from_config(config)


def test_kv_heads_default_to_attention_heads_and_dtype_key_of_transformers_5():
    config = model_config("llama-3.1-8b")
    del config["num_key_value_heads"], config["torch_dtype"]
    shape = ModelShape.from_config(config | {"dtype": "float16"})
    assert shape.num_kv_heads == shape.num_heads
    assert shape.torch_dtype == "float16"


def test_unmodelled_moe_layout_is_refused_with_its_model_type():
    config = model_config("llama-3.1-8b") | {"model_type": "qwen3_moe", "num_experts": 128, "moe_intermediate_size": 768}
    with pytest.raises(UnsupportedModel, match="qwen3_moe"):
        ModelShape.from_config(config)


def test_read_config_names_the_origin_and_the_directory(tmp_path):
    with pytest.raises(UserError, match=rf"^model.source ./m \({tmp_path}\): no config.json; point it at"):
        read_config(tmp_path, "model.source ./m")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(UserError, match=rf"^{tmp_path}: config.json is not valid JSON"):
        read_config(tmp_path)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(UserError, match="config.json is not a JSON object"):
        read_config(tmp_path)


def test_read_model_shape_reads_the_text_config_of_a_multimodal_wrapper(tmp_path):
    text = model_config("llama-3.1-8b")
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlavaForConditionalGeneration"],
                                                      "text_config": text, "torch_dtype": "float16"}))
    shape = read_model_shape(tmp_path)
    assert (shape.name, shape.num_layers, shape.torch_dtype) == (tmp_path.name, 32, "float16")
    assert shape.total_params() == PUBLISHED_PARAMS["llama-3.1-8b"]


def test_rope_and_sharder_fields_are_read_from_the_same_shape():
    shape = ModelShape.from_config(model_config("llama-3.1-8b"))
    assert (shape.architecture, shape.rope_theta, shape.rope_scaling["rope_type"]) == ("LlamaForCausalLM", 500000.0, "llama3")
    assert (shape.rms_norm_eps, shape.max_position_embeddings, shape.hidden_act) == (1e-05, 131072, "silu")
