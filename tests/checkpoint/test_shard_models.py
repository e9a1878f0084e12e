"""Tiny synthetic checkpoints for the sharding tests, and checks of the fixtures themselves.

Imported by the other test_shard*/test_verify_checkpoint* modules (`shard_models` fixture).
Models are multi-file (max_shard_size) so the index path is always exercised, and their norm
weights are randomised (the synthetic writer makes them all ones, which would hide a swapped norm).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engineforge.recipe.schema import SyntheticModel

COMMON = dict(hidden_size=32, intermediate_size=64, num_attention_heads=4, vocab_size=301, max_shard_size="6KB")
SPECS = {
    # GQA (4 query / 2 KV heads), 5 layers: pp=2 -> 3+2, pp=3 -> 2+2+1; vocab 301 divides by no tp > 1.
    "llama_gqa": SyntheticModel(architecture="llama", num_hidden_layers=5, num_key_value_heads=2, seed=1, **COMMON),
    # MHA with tied embeddings, 3 layers.
    "llama_tied": SyntheticModel(architecture="llama", num_hidden_layers=3, num_key_value_heads=4, tie_word_embeddings=True, seed=2, **COMMON),
    # Mixtral as transformers >= 5 saves it (fused experts), 4 experts, top-2.
    "mixtral": SyntheticModel(architecture="mixtral", num_hidden_layers=3, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2, seed=3, **COMMON),
}
DERIVED = {"mixtral_released": "mixtral"}  # the released Mixtral layout, made from "mixtral"


class ShardModels:
    """Writes each model once, on first use."""

    def __init__(self, root: Path):
        self.root = root

    def __call__(self, name: str) -> Path:
        path = self.root / name
        if not path.exists():
            if name in DERIVED:
                to_released_mixtral(self(DERIVED[name]), path)
            else:
                from engineforge.sources.synthetic import write_synthetic_model

                write_synthetic_model(SPECS[name], path)
                randomize_norms(path)
        return path


@pytest.fixture(scope="session")
def shard_models(tmp_path_factory) -> ShardModels:
    return ShardModels(tmp_path_factory.mktemp("shard-models"))


def weight_files(model_dir: Path) -> list[Path]:
    return sorted(model_dir.glob("*.safetensors"))


def randomize_norms(model_dir: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    generator = torch.Generator().manual_seed(7)
    for path in weight_files(model_dir):
        tensors = load_file(path)
        for name, tensor in tensors.items():
            if name.endswith("norm.weight"):
                tensors[name] = 1 + 0.2 * torch.randn(tensor.shape, generator=generator).to(tensor.dtype)
        save_file(tensors, path, metadata={"format": "pt"})


def to_released_mixtral(fused_dir: Path, out_dir: Path) -> Path:
    """Rewrite a transformers-5 Mixtral checkpoint in the released layout.

    transformers' conversion_mapping.py ("mixtral") maps the released layout to the fused one:
    `.block_sparse_moe.` -> `.mlp.`; experts.*.w1 and experts.*.w3 stacked (MergeModulelist dim 0)
    then Concatenate(dim=1) into experts.gate_up_proj, so rows [0, inter) are w1 (gate) and
    [inter, 2*inter) are w3 (up), as MixtralExperts.forward's `gate, up = ....chunk(2, dim=-1)`
    reads them; experts.*.w2 stacked into experts.down_proj. This inverts that.
    """
    from safetensors.torch import load_file, save_file

    shutil.copytree(fused_dir, out_dir, ignore=shutil.ignore_patterns("*.safetensors", "*.index.json"))
    weight_map = {}
    for path in weight_files(fused_dir):
        released = {}
        for name, tensor in load_file(path).items():
            prefix = name.split(".mlp.")[0]
            if name.endswith(".mlp.gate.weight"):
                released[prefix + ".block_sparse_moe.gate.weight"] = tensor
            elif name.endswith(".mlp.experts.gate_up_proj"):
                inter = tensor.shape[1] // 2
                for e in range(tensor.shape[0]):
                    released[f"{prefix}.block_sparse_moe.experts.{e}.w1.weight"] = tensor[e, :inter].clone()
                    released[f"{prefix}.block_sparse_moe.experts.{e}.w3.weight"] = tensor[e, inter:].clone()
            elif name.endswith(".mlp.experts.down_proj"):
                for e in range(tensor.shape[0]):
                    released[f"{prefix}.block_sparse_moe.experts.{e}.w2.weight"] = tensor[e].clone()
            else:
                released[name] = tensor
        save_file(released, out_dir / path.name, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(released, path.name))
    index = {"metadata": {}, "weight_map": weight_map}
    (out_dir / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return out_dir


def reference_logits(model_dir: Path):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        return model(torch.arange(3, 40, 3)[None]).logits


def test_fixtures_are_multi_file_with_random_norms(shard_models):
    from safetensors.torch import load_file

    model_dir = shard_models("llama_gqa")
    assert len(weight_files(model_dir)) > 3
    norms = {k: v for p in weight_files(model_dir) for k, v in load_file(p).items() if k.endswith("norm.weight")}
    assert norms and all(not (v == 1).all() for v in norms.values())


def test_released_mixtral_fixture_is_the_same_model_to_transformers(shard_models):
    """transformers loads the released layout through its own conversion; equal logits prove the
    fixture's w1 = gate / w3 = up split is the one transformers (and released checkpoints) use."""
    import torch

    released = shard_models("mixtral_released")
    names = json.loads((released / "model.safetensors.index.json").read_text())["weight_map"]
    assert "model.layers.0.block_sparse_moe.experts.3.w3.weight" in names
    assert not any(".mlp." in name for name in names)
    torch.testing.assert_close(reference_logits(released), reference_logits(shard_models("mixtral")), rtol=0, atol=0)
