"""shard_checkpoint and `engineforge shard`: the TensorRT-LLM checkpoint format, written safely.

Layout facts are checked tensor by tensor against the Hugging Face source, citing
NVIDIA/TensorRT-LLM tensorrt_llm/models/llama/convert.py (load_weights_from_hf_model,
load_weights_from_hf_by_shard, QkvWeightHelper), tensorrt_llm/models/convert_utils.py
(split = torch.chunk, dup_kv_weight) and ../shared/trtllm-facts.md.
"""

from __future__ import annotations

import errno
import hashlib
import json

import pytest
import torch
from safetensors.torch import load_file
from test_shard_models import shard_models  # noqa: F401 (fixture)

from engineforge.checkpoint import rank_writer, shard_checkpoint
from engineforge.checkpoint import shard as checkpoint_module
from engineforge.checkpoint.hf_reader import HFCheckpoint
from engineforge.checkpoint.supported import read_shardable_shape
from engineforge.cli.app import main
from engineforge.errors import UserError


def source(model_dir):
    """name -> tensor of the canonical source weights (released Mixtral names)."""
    with HFCheckpoint.open(model_dir, read_shardable_shape(model_dir)) as checkpoint:
        return {name: checkpoint.read(name) for name in checkpoint.tensors}


def ranks(out_dir, world):
    return [load_file(out_dir / f"rank{r}.safetensors") for r in range(world)]


def test_llama_tp2_pp2_tensor_by_tensor(shard_models, tmp_path):
    model_dir = shard_models("llama_gqa")  # 5 layers, 4 heads / 2 KV heads, head 8, inter 64, vocab 301
    report = shard_checkpoint(model_dir, tmp_path / "ckpt", tp=2, pp=2)
    src, files = source(model_dir), ranks(tmp_path / "ckpt", 4)
    # rank = pp_rank * tp + tp_rank; the first stage holds layers 0-2, the second 3-4, each numbered from 0.
    assert sorted({k.split(".")[2] for k in files[2] if k.startswith("transformer.layers.")}) == ["0", "1"]
    assert "transformer.vocab_embedding.weight" in files[1] and "transformer.vocab_embedding.weight" not in files[2]
    assert "lm_head.weight" in files[3] and "lm_head.weight" not in files[0]
    for tp_rank in range(2):
        first, second = files[tp_rank], files[2 + tp_rank]
        half = slice(tp_rank * 32, (tp_rank + 1) * 32)  # chunk of 64 rows/columns
        layer = "model.layers.3."  # global layer 3 = local layer 0 of stage 1
        # QKV: per rank [q_r; k_r; v_r]; with 2 KV heads and tp 2 each rank holds one KV head (8 rows).
        kv = slice(tp_rank * 8, (tp_rank + 1) * 8)
        qkv = torch.cat([src[layer + "self_attn.q_proj.weight"][16 * tp_rank : 16 * (tp_rank + 1)],
                         src[layer + "self_attn.k_proj.weight"][kv], src[layer + "self_attn.v_proj.weight"][kv]])
        assert torch.equal(second["transformer.layers.0.attention.qkv.weight"], qkv)
        # Row parallel: o_proj and down_proj split on dim 1.
        assert torch.equal(second["transformer.layers.0.attention.dense.weight"], src[layer + "self_attn.o_proj.weight"][:, 16 * tp_rank : 16 * (tp_rank + 1)])
        assert torch.equal(second["transformer.layers.0.mlp.proj.weight"], src[layer + "mlp.down_proj.weight"][:, half])
        # Crossed names: mlp.fc = gate_proj, mlp.gate = up_proj, both column parallel (dim 0).
        assert torch.equal(second["transformer.layers.0.mlp.fc.weight"], src[layer + "mlp.gate_proj.weight"][half])
        assert torch.equal(second["transformer.layers.0.mlp.gate.weight"], src[layer + "mlp.up_proj.weight"][half])
        assert torch.equal(second["transformer.layers.0.post_layernorm.weight"], src[layer + "post_attention_layernorm.weight"])
        assert torch.equal(first["transformer.vocab_embedding.weight"], src["model.embed_tokens.weight"])  # replicated
        assert torch.equal(second["transformer.ln_f.weight"], src["model.norm.weight"])
    # lm_head: 301 rows zero-padded to 302, then chunked: rank 3 ends with one zero row.
    assert torch.equal(files[2]["lm_head.weight"], src["lm_head.weight"][:151])
    assert torch.equal(files[3]["lm_head.weight"][:150], src["lm_head.weight"][151:])
    assert not files[3]["lm_head.weight"][150].any()
    assert report.dtype == "float32" and all(t.dtype == torch.float32 for f in files for t in f.values())


def test_kv_heads_are_duplicated_when_fewer_than_tp(shard_models, tmp_path):
    model_dir = shard_models("llama_gqa")  # 2 KV heads, tp 4: each head repeated twice (dup_kv_weight)
    shard_checkpoint(model_dir, tmp_path / "ckpt", tp=4)
    src, files = source(model_dir), ranks(tmp_path / "ckpt", 4)
    k = src["model.layers.0.self_attn.k_proj.weight"]
    for tp_rank, head in enumerate([0, 0, 1, 1]):
        qkv = files[tp_rank]["transformer.layers.0.attention.qkv.weight"]
        assert qkv.shape == (8 + 8 + 8, 32)  # one query head, one KV head each
        assert torch.equal(qkv[8:16], k[head * 8 : (head + 1) * 8])


def test_mixtral_experts_follow_convert_py(shard_models, tmp_path):
    # convert.py: rank_experts = mapping.ep_experts(num_experts); w3, w1 split on dim 1 and w2 on dim 2
    # over moe_tp; mlp.fc = concat([w3, w1], dim=-2); mlp.proj = w2; mlp.router = block_sparse_moe.gate
    # read with get_weight(..., torch.float32). tp 2, ep 2 -> moe_tp 1; with tp 2, ep 1 -> moe_tp 2.
    model_dir = shard_models("mixtral")
    src = source(model_dir)
    shard_checkpoint(model_dir, tmp_path / "ep2", tp=2, ep=2, dtype="bfloat16")
    for tp_rank, rank_file in enumerate(ranks(tmp_path / "ep2", 2)):
        fc, proj = rank_file["transformer.layers.1.mlp.fc.weight"], rank_file["transformer.layers.1.mlp.proj.weight"]
        assert fc.shape == (2, 128, 32) and proj.shape == (2, 32, 64) and fc.dtype == torch.bfloat16
        for local in range(2):
            e = f"model.layers.1.block_sparse_moe.experts.{tp_rank * 2 + local}."  # moe_ep_rank = tp_rank % ep
            assert torch.equal(fc[local, :64], src[e + "w3.weight"].to(torch.bfloat16))  # up first
            assert torch.equal(fc[local, 64:], src[e + "w1.weight"].to(torch.bfloat16))  # then gate
            assert torch.equal(proj[local], src[e + "w2.weight"].to(torch.bfloat16))
        router = rank_file["transformer.layers.1.mlp.router.weight"]
        assert router.dtype == torch.float32 and torch.equal(router, src["model.layers.1.block_sparse_moe.gate.weight"])
    shard_checkpoint(model_dir, tmp_path / "tp2", tp=2, ep=1)
    for tp_rank, rank_file in enumerate(ranks(tmp_path / "tp2", 2)):
        rows = slice(tp_rank * 32, (tp_rank + 1) * 32)  # moe_tp_rank = tp_rank // ep
        e = "model.layers.0.block_sparse_moe.experts.3."
        fc = rank_file["transformer.layers.0.mlp.fc.weight"]
        assert fc.shape == (4, 64, 32)
        assert torch.equal(fc[3], torch.cat([src[e + "w3.weight"][rows], src[e + "w1.weight"][rows]]))
        assert torch.equal(rank_file["transformer.layers.0.mlp.proj.weight"][3], src[e + "w2.weight"][:, rows])


def test_config_json(shard_models, tmp_path):
    report = shard_checkpoint(shard_models("mixtral"), tmp_path / "ckpt", tp=2, pp=3, ep=2, dtype="bfloat16")
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config == report.config
    assert config["mapping"] == {"world_size": 6, "tp_size": 2, "pp_size": 3, "moe_tp_size": 1, "moe_ep_size": 2, "cp_size": 1, "gpus_per_node": 8}
    # llama/config.py from_hugging_face: Mixtral gets hidden_act swiglu and RENORMALIZE (1) routing.
    assert (config["architecture"], config["dtype"], config["hidden_act"]) == ("MixtralForCausalLM", "bfloat16", "swiglu")
    assert config["moe"] == {"num_experts": 4, "top_k": 2, "normalization_mode": 1}
    assert (config["position_embedding_type"], config["rotary_base"], config["vocab_size"]) == ("rope_gpt_neox", 1e6, 301)
    assert (config["num_key_value_heads"], config["head_size"], config["norm_epsilon"]) == (2, 8, 1e-5)


def test_report_matches_the_files_and_no_temporary_is_left(shard_models, tmp_path):
    out = tmp_path / "ckpt"
    report = shard_checkpoint(shard_models("llama_tied"), out, tp=2, pp=3, workers=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    assert sorted(p.name for p in out.iterdir()) == ["config.json"] + [f"rank{r}.safetensors" for r in range(6)]
    for file in report.files:
        # Output hashing is off by default (issue 3): the sha256 field stays None.
        assert (file.size_bytes, file.sha256) == ((out / file.name).stat().st_size, None)
    assert report.output_bytes == sum(p.stat().st_size for p in out.iterdir())
    assert report.peak_rss_bytes and report.peak_rss_bytes > 0


def test_hash_outputs_gives_the_sha256_of_the_written_files(shard_models, tmp_path):
    out = tmp_path / "ckpt"
    report = shard_checkpoint(shard_models("llama_tied"), out, tp=2, pp=3, workers=3, hash_outputs=True)
    assert [f.name for f in report.files] == [f"rank{r}.safetensors" for r in range(6)]
    for file in report.files:
        data = (out / file.name).read_bytes()
        assert (file.size_bytes, file.sha256) == (len(data), hashlib.sha256(data).hexdigest())


def test_parallel_workers_and_small_budget_write_identical_files(shard_models, tmp_path):
    model_dir = shard_models("mixtral_released")
    shard_checkpoint(model_dir, tmp_path / "serial", tp=2, pp=2)
    parallel = shard_checkpoint(model_dir, tmp_path / "parallel", tp=2, pp=2, workers=4, memory_budget_bytes=8 << 20)
    assert parallel.workers == 2  # 8 MiB allows two workers of 4 x 1 MiB buffers
    assert same_files(tmp_path / "serial", tmp_path / "parallel")


def same_files(first, second):
    """Both directories hold the same file names with the same bytes."""
    names = sorted(p.name for p in first.iterdir())
    return names == sorted(p.name for p in second.iterdir()) and all(
        (first / name).read_bytes() == (second / name).read_bytes() for name in names
    )


def test_files_are_identical_when_the_kernel_cannot_copy(shard_models, tmp_path, monkeypatch):
    # Simulates a source on another filesystem (EXDEV), where copy_file_range is refused and the
    # writer falls back to pread + write; both paths must produce the same bytes.
    # With hashing on, both of its paths are checked too (mmap of copied ranges, inline on writes).
    model_dir = shard_models("mixtral")
    kernel = shard_checkpoint(model_dir, tmp_path / "kernel", tp=2, pp=2)
    kernel_hashed = shard_checkpoint(model_dir, tmp_path / "kernel_hashed", tp=2, pp=2, hash_outputs=True)

    def refuse(*args):
        raise OSError(errno.EXDEV, "Invalid cross-device link (simulated)")

    monkeypatch.setattr(rank_writer.os, "copy_file_range", refuse)
    fallback = shard_checkpoint(model_dir, tmp_path / "fallback", tp=2, pp=2)
    fallback_hashed = shard_checkpoint(model_dir, tmp_path / "fallback_hashed", tp=2, pp=2, hash_outputs=True)
    assert all(f.sha256 is None for f in kernel.files + fallback.files)
    for other in ("kernel_hashed", "fallback", "fallback_hashed"):
        assert same_files(tmp_path / "kernel", tmp_path / other)
    expected = [hashlib.sha256((tmp_path / "kernel" / f.name).read_bytes()).hexdigest() for f in kernel.files]
    assert [f.sha256 for f in kernel_hashed.files] == [f.sha256 for f in fallback_hashed.files] == expected


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        (dict(tp=3), "--tp 3: num_attention_heads 4"),
        (dict(tp=1, pp=6), "--pp 6: more pipeline ranks than the model's 5 layers"),
        (dict(tp=2, ep=2), "--ep 2: LlamaForCausalLM has no experts"),
        (dict(tp=0), "--tp 0: must be a positive integer"),
        (dict(tp=1, dtype="int8"), "--dtype int8: not supported"),
        (dict(tp=1, memory_budget_bytes=1000), "--memory-budget 1000: too small"),
    ],
)
def test_bad_arguments_fail_before_writing(shard_models, tmp_path, kwargs, needle):
    with pytest.raises(UserError) as error:
        shard_checkpoint(shard_models("llama_gqa"), tmp_path / "ckpt", **kwargs)
    assert needle in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_unsupported_architecture(shard_models, tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    config = json.loads((shard_models("llama_gqa") / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps(config | {"architectures": ["Qwen2MoeForCausalLM"]}))
    with pytest.raises(UserError, match="architectures .*Qwen2MoeForCausalLM.* is not supported"):
        shard_checkpoint(model_dir, tmp_path / "ckpt", tp=1)
    assert not (tmp_path / "ckpt").exists()


def test_not_enough_disk_is_checked_from_headers_first(shard_models, tmp_path, monkeypatch):
    # A fake free-space figure (filling the real disk is not an option in a test).
    monkeypatch.setattr(checkpoint_module, "free_disk_bytes", lambda path: 10_000)
    with pytest.raises(UserError, match=r"--out .*ckpt: the checkpoint needs 0\.00 GB, only 0\.00 GB are free"):
        shard_checkpoint(shard_models("llama_gqa"), tmp_path / "ckpt", tp=2)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_never_touched(shard_models, tmp_path):
    out = tmp_path / "ckpt"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    with pytest.raises(UserError, match="already exists and is not an empty directory"):
        shard_checkpoint(shard_models("llama_gqa"), out, tp=1)
    assert (out / "keep.txt").read_text() == "precious"


def test_a_failing_rank_leaves_no_partial_output(shard_models, tmp_path, monkeypatch):
    real = checkpoint_module.write_rank_file

    def fail_on_rank_3(plan, checkpoint, path, *args, **kwargs):
        if path.name == "rank3.safetensors":
            path.write_bytes(b"half")
            raise OSError(28, "No space left on device (simulated)")
        return real(plan, checkpoint, path, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module, "write_rank_file", fail_on_rank_3)
    with pytest.raises(OSError, match="simulated"):
        shard_checkpoint(shard_models("llama_gqa"), tmp_path / "ckpt", tp=2, pp=2, workers=2)
    assert list(tmp_path.iterdir()) == []


def test_cli_shards_and_reports(shard_models, tmp_path, capsys):
    out = tmp_path / "ckpt"
    assert main(["shard", str(shard_models("llama_gqa")), "--tp", "2", "--pp", "2", "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [f["name"] for f in report["files"]] == [f"rank{r}.safetensors" for r in range(4)]
    assert (out / "rank3.safetensors").stat().st_size == report["files"][3]["size_bytes"]
    assert all(f["sha256"] is None for f in report["files"])


def test_cli_hash_reports_the_sha256_of_each_rank_file(shard_models, tmp_path, capsys):
    out = tmp_path / "ckpt"
    argv = ["shard", str(shard_models("llama_gqa")), "--tp", "2", "--pp", "2", "--out", str(out), "--hash", "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert [f["name"] for f in report["files"]] == [f"rank{r}.safetensors" for r in range(4)]
    for file in report["files"]:
        assert file["sha256"] == hashlib.sha256((out / file["name"]).read_bytes()).hexdigest()
    # The human-readable listing prints the digests too, and only with --hash.
    assert main(["shard", str(shard_models("llama_gqa")), "--tp", "2", "--out", str(tmp_path / "a"), "--hash"]) == 0
    assert capsys.readouterr().out.count("sha256 ") == 2
    assert main(["shard", str(shard_models("llama_gqa")), "--tp", "2", "--out", str(tmp_path / "b")]) == 0
    assert "sha256" not in capsys.readouterr().out


def test_cli_user_error_is_one_line_exit_2(shard_models, tmp_path, capsys):
    code = main(["shard", str(shard_models("llama_gqa")), "--tp", "3", "--out", str(tmp_path / "ckpt")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: --tp 3:") and len(err.splitlines()) == 1
