"""Acceptance: sharded checkpoints rebuild their source exactly and compute transformers' logits.

The emulated forward pass runs over the rank files (per-rank partial matmuls summed as an
all-reduce, column-parallel lm_head shards gathered, pipeline stages in sequence), never over
reassembled weights; the mutation tests below show each check fails when the format is wrong.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from tests.checkpoint.test_shard_models import reference_logits, shard_models  # noqa: F401 (fixture)

from engineforge.checkpoint import shard_checkpoint
from engineforge.checkpoint.hf_reader import canonical_shapes
from engineforge.checkpoint.supported import read_shardable_shape
from engineforge.cli.app import main
from engineforge.verify.ckpt_reader import TrtllmCheckpoint
from engineforge.verify.emulate import emulate_logits
from engineforge.verify.single import relative_error, verify_checkpoint

CASES = [
    ("llama_gqa", dict(tp=1)),
    ("llama_gqa", dict(tp=2)),  # vocab 301 padded to 302
    ("llama_gqa", dict(tp=4)),  # 2 KV heads < tp 4: duplicated; vocab padded to 304
    ("llama_gqa", dict(tp=1, pp=2)),  # layers 3 + 2
    ("llama_gqa", dict(tp=2, pp=3)),  # layers 2 + 2 + 1
    ("llama_gqa", dict(tp=4, pp=3)),
    ("llama_gqa", dict(tp=2, pp=2, dtype="bfloat16")),
    ("llama_tied", dict(tp=4, pp=2)),  # MHA, tied embeddings, layers 2 + 1
    ("llama_tied", dict(tp=2, pp=3)),
    ("mixtral", dict(tp=1, ep=1)),
    ("mixtral", dict(tp=2, ep=1)),  # experts split over moe_tp 2
    ("mixtral", dict(tp=2, ep=2, pp=2)),  # experts spread over moe_ep 2
    ("mixtral_released", dict(tp=2, ep=2)),
    ("mixtral_released", dict(tp=2, ep=1, pp=3, dtype="bfloat16")),
]


@pytest.mark.parametrize("model,layout", CASES, ids=[f"{m}-" + "-".join(f"{k}{v}" for k, v in kw.items()) for m, kw in CASES])
def test_sharded_checkpoint_rebuilds_source_and_matches_logits(shard_models, tmp_path, model, layout):
    model_dir = shard_models(model)
    shard_checkpoint(model_dir, tmp_path / "ckpt", **layout)
    report = verify_checkpoint(tmp_path / "ckpt", model_dir, device="cpu")
    failed = [c for c in report.checks if not c.ok]
    assert not failed, failed[:3]
    weights = [c for c in report.checks if c.name in canonical_shapes(read_shardable_shape(model_dir))]
    assert len(weights) == len(canonical_shapes(read_shardable_shape(model_dir)))
    assert all(c.max_rel_error == 0.0 for c in weights)  # exact
    assert report.logits.max_rel_error <= 1e-5 and report.ok


def rewrite_rank(ckpt_dir, rank, change):
    path = ckpt_dir / f"rank{rank}.safetensors"
    tensors = load_file(path)
    change(tensors)
    save_file(tensors, path)


def test_emulated_forward_uses_rank_files_and_catches_swapped_expert_halves(shard_models, tmp_path):
    # The same files with up/gate halves of one expert exchanged: weights "look" fine to a
    # shape check, but the forward pass must disagree with transformers.
    model_dir = shard_models("mixtral")
    ckpt_dir = tmp_path / "ckpt"
    shard_checkpoint(model_dir, ckpt_dir, tp=2, ep=2)
    ids = torch.arange(3, 40, 3)[None]
    expected = reference_logits(model_dir)
    reference_model = __import__("transformers").AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    cos, sin = reference_model.model.rotary_emb(expected, torch.arange(ids.shape[1])[None])
    with torch.no_grad():
        assert relative_error(emulate_logits(TrtllmCheckpoint(ckpt_dir), ids, cos, sin), expected) <= 1e-5

        def swap_halves(tensors):
            for layer in range(3):
                fc = tensors[f"transformer.layers.{layer}.mlp.fc.weight"]
                fc[:] = torch.cat([fc[:, 64:], fc[:, :64]], dim=1)

        rewrite_rank(ckpt_dir, 1, swap_halves)
        assert relative_error(emulate_logits(TrtllmCheckpoint(ckpt_dir), ids, cos, sin), expected) > 1e-3


def test_verify_reports_a_changed_weight(shard_models, tmp_path):
    model_dir = shard_models("llama_gqa")
    shard_checkpoint(model_dir, tmp_path / "ckpt", tp=2, pp=2)

    def nudge(tensors):
        tensors["transformer.layers.1.attention.dense.weight"][0, 0] += 1e-3

    rewrite_rank(tmp_path / "ckpt", 3, nudge)
    report = verify_checkpoint(tmp_path / "ckpt", model_dir, device="cpu")
    failed = [c.name for c in report.checks if not c.ok]
    assert failed == ["model.layers.4.self_attn.o_proj.weight"]  # stage 1, local layer 1
    assert not report.ok and report.logits is None


@pytest.mark.parametrize(
    "damage,problem",
    [
        (lambda t: t["transformer.layers.0.attention.qkv.weight"][8:16].mul_(2), "duplicated k head differs"),
        (lambda t: t["lm_head.weight"][-1].fill_(1.0), "padding rows are not zero"),
        (lambda t: t.pop("transformer.layers.0.post_layernorm.weight"), "missing transformer.layers.0.post_layernorm.weight"),
        (lambda t: t.update(extra=torch.zeros(1)), "unexpected extra"),
    ],
)
def test_verify_reports_broken_layouts(shard_models, tmp_path, damage, problem):
    model_dir = shard_models("llama_gqa")
    shard_checkpoint(model_dir, tmp_path / "ckpt", tp=4)  # rank 3: a duplicated KV head and the padded lm_head rows
    rewrite_rank(tmp_path / "ckpt", 3, damage)
    report = verify_checkpoint(tmp_path / "ckpt", model_dir, device="cpu")
    problems = [c.problem for c in report.checks if not c.ok]
    assert any(problem in p for p in problems), problems


def test_verify_rejects_a_checkpoint_of_another_model(shard_models, tmp_path):
    shard_checkpoint(shard_models("llama_tied"), tmp_path / "ckpt", tp=2)
    report = verify_checkpoint(tmp_path / "ckpt", shard_models("llama_gqa"), device="cpu")
    assert not report.ok and "num_hidden_layers 3 != 5" in report.checks[0].problem


def test_cli_exit_codes(shard_models, tmp_path, capsys):
    model_dir = shard_models("llama_tied")
    ckpt = tmp_path / "ckpt"
    shard_checkpoint(model_dir, ckpt, tp=2, pp=2)
    assert main(["verify-checkpoint", str(ckpt), "--against", str(model_dir)]) == 0
    out = capsys.readouterr().out
    assert "lm_head.weight" in out and "logits max rel. error" in out and "MISMATCH" not in out

    rewrite_rank(ckpt, 2, lambda t: t["lm_head.weight"][5].neg_())
    assert main(["verify-checkpoint", str(ckpt), "--against", str(model_dir), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in report["checks"] if not c["ok"]] == ["lm_head.weight"]

    assert main(["verify-checkpoint", str(tmp_path / "nowhere"), "--against", str(model_dir)]) == 2
    assert "no config.json" in capsys.readouterr().err
