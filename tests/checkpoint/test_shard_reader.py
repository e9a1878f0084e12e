"""Reading Hugging Face checkpoints lazily: safetensors headers, index files, both Mixtral layouts,
chunked box reads, and the one-line errors for broken inputs."""

from __future__ import annotations

import json
import shutil
import struct

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from test_shard_models import shard_models, weight_files  # noqa: F401 (fixture)

from engineforge.checkpoint.box_reader import BoxReader, FileHandles
from engineforge.checkpoint.hf_reader import (
    HFCheckpoint,
    canonical_shapes,
    read_stored_tensors,
)
from engineforge.checkpoint.safetensors_format import encode_header, read_header
from engineforge.checkpoint.supported import read_shardable_shape, shardable_shape
from engineforge.errors import UserError


@pytest.fixture
def mixed_file(tmp_path):
    tensors = {
        "a": torch.randn(5, 7),
        "b": torch.randn(3, 4, 6).to(torch.bfloat16),
        "c": torch.arange(9, dtype=torch.float16),
    }
    path = tmp_path / "mixed.safetensors"
    save_file(tensors, path)
    return path, tensors


def test_read_header_agrees_with_the_safetensors_library(mixed_file):
    path, tensors = mixed_file
    header = read_header(path)
    with safe_open(path, "pt") as handle:
        assert set(header) == set(handle.keys())
        for name, stored in header.items():
            assert list(stored.shape) == handle.get_slice(name).get_shape()
            raw = path.read_bytes()[stored.start : stored.start + stored.nbytes]
            assert torch.equal(torch.frombuffer(bytearray(raw), dtype=tensors[name].dtype).reshape(stored.shape), tensors[name])


def test_encoded_header_is_read_by_the_safetensors_library(tmp_path):
    tensors = {"z.weight": torch.randn(3, 5), "a.bias": torch.randn(7).to(torch.bfloat16)}
    entries = [(name, {"torch.float32": "F32", "torch.bfloat16": "BF16"}[str(t.dtype)], tuple(t.shape)) for name, t in tensors.items()]
    path = tmp_path / "streamed.safetensors"
    path.write_bytes(encode_header(entries) + b"".join(t.view(torch.uint8).numpy().tobytes() for t in tensors.values()))
    assert (len(path.read_bytes()) - 8 - struct.unpack("<Q", path.read_bytes()[:8])[0]) == sum(t.nbytes for t in tensors.values())
    loaded = load_file(path)
    assert all(torch.equal(loaded[name], tensors[name]) for name in tensors)


@pytest.mark.parametrize(
    "box",
    [((0, 5), (0, 7)), ((1, 4), (0, 7)), ((0, 5), (2, 6)), ((2, 3), (6, 7))],
)
@pytest.mark.parametrize("out_dtype", [None, "BF16", "F16"])
def test_box_reader_streams_any_box_in_small_chunks(mixed_file, box, out_dtype):
    path, tensors = mixed_file
    stored = read_header(path)["a"]
    handles = FileHandles()
    reader = BoxReader(handles, chunk_bytes=30)  # smaller than one row: one row per chunk
    data = bytearray()
    for piece in reader.chunks(stored, box, out_dtype):
        data += piece
    handles.close()
    want = tensors["a"][box[0][0] : box[0][1], box[1][0] : box[1][1]]
    if out_dtype:
        want = want.to({"BF16": torch.bfloat16, "F16": torch.float16}[out_dtype])
    assert torch.equal(torch.frombuffer(data, dtype=want.dtype).reshape(want.shape), want)


def test_fused_and_released_mixtral_layouts_read_the_same(shard_models):
    fused_dir, released_dir = shard_models("mixtral"), shard_models("mixtral_released")
    model = read_shardable_shape(fused_dir)
    with HFCheckpoint.open(fused_dir, model) as fused, HFCheckpoint.open(released_dir, model) as released:
        assert set(fused.tensors) == set(released.tensors) == set(canonical_shapes(model))
        assert fused.tensors["model.layers.1.block_sparse_moe.experts.2.w3.weight"].stored.name == "model.layers.1.mlp.experts.gate_up_proj"
        for name in fused.tensors:
            assert torch.equal(fused.read(name), released.read(name)), name


def test_tied_lm_head_reads_the_embedding(shard_models):
    model_dir = shard_models("llama_tied")
    with HFCheckpoint.open(model_dir, read_shardable_shape(model_dir)) as checkpoint:
        assert "lm_head.weight" not in checkpoint.stored
        assert torch.equal(checkpoint.read("lm_head.weight"), checkpoint.read("model.embed_tokens.weight"))


def broken_copy(shard_models, tmp_path, how):
    """A copy of llama_gqa damaged in one way; returns (model dir, text the error must contain)."""
    model_dir = tmp_path / "model"
    shutil.copytree(shard_models("llama_gqa"), model_dir)
    victim = weight_files(model_dir)[1]
    raw = victim.read_bytes()
    if how == "missing shard":
        victim.unlink()
        return model_dir, f"{victim}: missing shard"
    if how == "truncated shard":
        victim.write_bytes(raw[:-10])
        return model_dir, f"{victim}: truncated"
    if how == "garbage header":
        victim.write_bytes(raw[:8] + b"#" * 20 + raw[28:])
        return model_dir, f"{victim}: corrupt safetensors header (not JSON"
    if how == "huge header length":
        victim.write_bytes(struct.pack("<Q", 1 << 40) + raw[8:])
        return model_dir, f"{victim}: corrupt safetensors header (declares"
    if how == "trailing bytes":
        victim.write_bytes(raw + b"\0" * 4)
        return model_dir, f"{victim}: corrupt safetensors file (4 bytes after"
    if how == "index names a tensor its file lacks":
        index_path = model_dir / "model.safetensors.index.json"
        index = json.loads(index_path.read_text())
        index["weight_map"]["model.layers.0.mlp.up_proj.weight"] = victim.name
        index_path.write_text(json.dumps(index))
        return model_dir, "does not hold tensor 'model.layers.0.mlp.up_proj.weight'"
    if how == "shape disagrees with config":
        config = json.loads((model_dir / "config.json").read_text())
        config["intermediate_size"] = 96
        (model_dir / "config.json").write_text(json.dumps(config))
        return model_dir, "config.json implies"
    raise ValueError(how)


BROKEN = [
    "missing shard",
    "truncated shard",
    "garbage header",
    "huge header length",
    "trailing bytes",
    "index names a tensor its file lacks",
    "shape disagrees with config",
]


@pytest.mark.parametrize("how", BROKEN)
def test_broken_inputs_are_one_line_user_errors(shard_models, tmp_path, how):
    model_dir, needle = broken_copy(shard_models, tmp_path, how)
    with pytest.raises(UserError) as error:
        HFCheckpoint.open(model_dir, read_shardable_shape(model_dir)).close()
    assert needle in str(error.value) and "\n" not in str(error.value)


def test_missing_weights_file_is_reported(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    with pytest.raises(UserError, match="neither model.safetensors nor model.safetensors.index.json"):
        read_stored_tensors(tmp_path)


BASE_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 301,
}


@pytest.mark.parametrize(
    "change,needle",
    [
        ({"architectures": ["GPT2LMHeadModel"]}, "architectures ['GPT2LMHeadModel'] is not supported"),
        ({"attention_bias": True}, "attention_bias: true is not supported"),
        ({"hidden_act": "gelu"}, "hidden_act 'gelu' is not supported"),
        ({"vocab_size": None}, "missing vocab_size"),
        ({"architectures": ["MixtralForCausalLM"]}, "missing num_local_experts, num_experts_per_tok"),
    ],
)
def test_model_config_errors(change, needle):
    config = {k: v for k, v in (BASE_CONFIG | change).items() if v is not None}
    with pytest.raises(UserError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        shardable_shape(config)


@pytest.mark.parametrize(
    "rope,theta,scaling",
    [
        ({"rope_parameters": {"rope_theta": 5e5, "rope_type": "default"}}, 5e5, None),  # transformers >= 5
        ({"rope_theta": 1e4}, 1e4, None),  # transformers 4
        ({"rope_theta": 5e5, "rope_scaling": {"rope_type": "llama3", "factor": 8.0}}, 5e5, {"rope_type": "llama3", "factor": 8.0}),
        ({"rope_parameters": {"rope_theta": 5e5, "rope_type": "llama3", "factor": 8.0}}, 5e5, {"rope_type": "llama3", "factor": 8.0}),
    ],
)
def test_rope_settings_from_either_transformers_generation(rope, theta, scaling):
    model = shardable_shape(BASE_CONFIG | rope)
    assert (model.rope_theta, model.rope_scaling) == (theta, scaling)
