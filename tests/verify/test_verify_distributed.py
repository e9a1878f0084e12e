"""verify-checkpoint --distributed: one process per rank over gloo on the CPU.

Real torch.distributed collectives (all-reduce of row-parallel partials, send/recv between
pipeline stages, gather of lm_head shards) on tiny synthetic models with random norm weights
(`shard_models`); logits against transformers within 1e-5 relative in float32. NCCL needs one
GPU per rank and is not run here; its input checks are.
"""

from __future__ import annotations

import json

import pytest
import torch
from tests.checkpoint.test_shard_models import shard_models  # noqa: F401 (fixture)
from test_verify_checkpoint import rewrite_rank

from engineforge.checkpoint import shard_checkpoint
from engineforge.cli.app import main
from engineforge.errors import UserError
from engineforge.verify.distributed import resolve_backend, verify_distributed

CASES = [
    ("llama_gqa", dict(tp=2)),  # 2 processes; vocab 301 padded to 302
    ("llama_gqa", dict(tp=4)),  # 4 processes; 2 KV heads duplicated over 4 ranks
    ("llama_gqa", dict(tp=1, pp=2)),  # 2 processes; layers 3 + 2, send/recv only
    ("llama_gqa", dict(tp=2, pp=2)),  # 4 processes; all-reduce within each stage, send/recv between them
    ("mixtral", dict(tp=2, ep=2)),  # experts spread over the two ranks
]


def run_cli(*args) -> int:
    return main(["verify-checkpoint", *map(str, args), "--timeout", "120"])


@pytest.mark.parametrize("model,layout", CASES, ids=[f"{m}-" + "-".join(f"{k}{v}" for k, v in kw.items()) for m, kw in CASES])
def test_distributed_logits_match_transformers(shard_models, tmp_path, monkeypatch, model, layout):
    # The launcher's environment of the moment reaches the ranks, with NVLink multicast forced off.
    monkeypatch.setenv("NCCL_NVLS_ENABLE", "1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    model_dir = shard_models(model)
    shard_checkpoint(model_dir, tmp_path / "ckpt", **layout)
    report = verify_distributed(tmp_path / "ckpt", model_dir, backend="gloo", timeout_s=120)
    world = layout.get("tp", 1) * layout.get("pp", 1)
    assert report.backend == "gloo" and report.world_size == world and report.device == "cpu"
    assert [c.name for c in report.checks] == ["config.json"] + [f"rank{r}.safetensors" for r in range(world)]
    assert all(c.ok for c in report.checks), report.checks
    assert report.logits is not None and report.logits.max_rel_error <= 1e-5 and report.ok
    assert report.env == {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "CUDA_VISIBLE_DEVICES": ""}
    assert set(report.timings) == {"launch_s", "load_s", "forward_s"}


def test_cli_passes_then_a_corrupted_rank_file_fails(shard_models, tmp_path, capsys):
    model_dir = shard_models("llama_gqa")
    ckpt = tmp_path / "ckpt"
    shard_checkpoint(model_dir, ckpt, tp=2, pp=2)
    assert run_cli(ckpt, "--against", model_dir, "--distributed", "--backend", "gloo", "--nproc", 4) == 0
    assert "(rtol 1e-05, gloo, 4 processes)" in capsys.readouterr().out

    # Same names and shapes, different values in the last stage's tp-rank 1: only the forward can tell.
    rewrite_rank(ckpt, 3, lambda t: t["transformer.layers.0.attention.dense.weight"].mul_(2))
    assert run_cli(ckpt, "--against", model_dir, "--distributed", "--backend", "gloo", "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert all(c["ok"] for c in report["checks"]) and not report["logits"]["ok"]
    assert report["logits"]["max_rel_error"] > 1e-3


@pytest.mark.parametrize(
    "damage,problem",
    [
        (lambda path: path.write_bytes(path.read_bytes()[:-100]), "cannot load"),  # truncated
        (lambda path: rewrite_rank(path.parent, 1, lambda t: t.pop("transformer.layers.1.mlp.gate.weight")), "missing transformer.layers.1.mlp.gate.weight"),
    ],
    ids=["truncated", "missing-tensor"],
)
def test_a_broken_rank_file_stops_every_rank(shard_models, tmp_path, capsys, damage, problem):
    model_dir = shard_models("llama_gqa")
    shard_checkpoint(model_dir, tmp_path / "ckpt", tp=2)
    damage(tmp_path / "ckpt" / "rank1.safetensors")
    assert run_cli(tmp_path / "ckpt", "--against", model_dir, "--distributed", "--backend", "gloo", "--json") == 1
    report = json.loads(capsys.readouterr().out)
    failed = {c["name"]: c["problem"] for c in report["checks"] if not c["ok"]}
    assert list(failed) == ["rank1.safetensors"] and problem in failed["rank1.safetensors"]
    assert report["logits"] is None


def test_a_rank_failing_mid_forward_stops_its_peers(shard_models, tmp_path):
    # lm_head of rank 1 with the right name but a wrong shape: rank 1 raises in its matmul while
    # rank 0 waits in the gather; the launcher must stop rank 0 and report rank 1, not hang.
    model_dir = shard_models("llama_gqa")
    shard_checkpoint(model_dir, tmp_path / "ckpt", tp=2)
    rewrite_rank(tmp_path / "ckpt", 1, lambda t: t.update({"lm_head.weight": torch.zeros(151, 8)}))
    report = verify_distributed(tmp_path / "ckpt", model_dir, backend="gloo", timeout_s=120)
    failed = [c for c in report.checks if not c.ok]
    assert [c.name for c in failed] == ["rank 1 process"] and "RuntimeError" in failed[0].problem
    assert report.logits is None and not report.ok


def test_a_checkpoint_of_another_model_fails_before_any_process_starts(shard_models, tmp_path, monkeypatch):
    shard_checkpoint(shard_models("llama_tied"), tmp_path / "ckpt", tp=2)
    monkeypatch.setattr("engineforge.verify.distributed.run_ranks", lambda *a, **k: pytest.fail("ranks started"))
    report = verify_distributed(tmp_path / "ckpt", shard_models("llama_gqa"), backend="gloo")
    assert not report.ok and "num_hidden_layers 3 != 5" in report.checks[0].problem


@pytest.mark.parametrize(
    "args,message",
    [
        (["--nproc", "3"], "--nproc 3: "),
        (["--backend", "mpi"], "--backend mpi: not one of auto, gloo, nccl"),
        (["--no-forward"], "--no-forward with --distributed"),
        (["--device", "cpu"], "--device cpu with --distributed"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(shard_models, tmp_path, capsys, args, message):
    model_dir = shard_models("llama_gqa")
    shard_checkpoint(model_dir, tmp_path / "ckpt", tp=2, pp=2)
    assert run_cli(tmp_path / "ckpt", "--against", model_dir, "--distributed", *args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_missing_checkpoint_is_exit_2(shard_models, tmp_path, capsys):
    assert run_cli(tmp_path / "nowhere", "--against", shard_models("llama_gqa"), "--distributed") == 2
    assert "no config.json" in capsys.readouterr().err


def test_nccl_needs_one_gpu_per_rank(monkeypatch):
    monkeypatch.setattr(torch.distributed, "is_nccl_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    with pytest.raises(UserError, match=r"--backend nccl: the checkpoint has 4 ranks .* 1 GPU\(s\) are visible \(CUDA_VISIBLE_DEVICES=2\)"):
        resolve_backend("nccl", 4)
    assert resolve_backend("nccl", 1) == "nccl"  # world size 1: the single-GPU check
    assert resolve_backend("auto", 4) == "gloo" and resolve_backend("auto", 1) == "nccl"


def test_nccl_on_a_torch_without_it(monkeypatch):
    monkeypatch.setattr(torch.distributed, "is_nccl_available", lambda: False)
    with pytest.raises(UserError, match="--backend nccl: this torch .* has no NCCL; use --backend gloo"):
        resolve_backend("nccl", 1)
    assert resolve_backend("auto", 1) == "gloo"
