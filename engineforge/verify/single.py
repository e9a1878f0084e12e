"""verify_checkpoint: does a TensorRT-LLM checkpoint hold, and compute, its Hugging Face source?

Two checks: every source weight rebuilt from the rank files must equal the source (converted to
the checkpoint's dtype) exactly, and logits of an emulated TP/PP forward pass over the rank
files must match `transformers`' logits (same rounded weights, float32) to `rtol`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel

from engineforge.checkpoint.hf_reader import HFCheckpoint
from engineforge.checkpoint.supported import read_shardable_shape
from engineforge.verify.ckpt_reader import LayoutMismatch, TrtllmCheckpoint
from engineforge.verify.reassemble import expected_rank_names, reassemblers

ROUTER = re.compile(r"\.(mlp|block_sparse_moe)\.gate\.weight$")
# Fields whose disagreement means the checkpoint is not of this model at all.
SAME_FIELDS = {
    "architecture": "architecture",
    "hidden_size": "hidden_size",
    "num_hidden_layers": "num_layers",
    "num_attention_heads": "num_heads",
    "num_key_value_heads": "num_kv_heads",
    "vocab_size": "vocab_size",
    "intermediate_size": "intermediate_size",
}


class Check(BaseModel):
    """One compared item: a weight, a rank file's tensor list, the config or the logits."""

    name: str
    max_rel_error: float | None = None
    ok: bool
    problem: str | None = None


class VerifyReport(BaseModel):
    ckpt_dir: Path
    hf_dir: Path
    rtol: float
    tokens: int
    device: str
    checks: list[Check]
    logits: Check | None = None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks) and (self.logits is None or self.logits.ok)


def verify_checkpoint(
    ckpt_dir: Path, hf_dir: Path, rtol: float = 1e-5, tokens: int = 16, device: str | None = None, forward: bool = True
) -> VerifyReport:
    """Compare every weight, then (when `forward` and the layout is sound) the logits."""
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    ckpt = TrtllmCheckpoint(ckpt_dir)
    shape = read_shardable_shape(hf_dir)
    report = VerifyReport(ckpt_dir=ckpt_dir, hf_dir=hf_dir, rtol=rtol, tokens=tokens, device=device, checks=[])
    report.checks.append(config_check(ckpt, shape))
    if not report.checks[0].ok:
        return report
    report.checks += [names_check(ckpt, rank) for rank in range(ckpt.layout.world_size)]
    with HFCheckpoint.open(hf_dir, shape) as hf:
        report.checks += [_weight_check(ckpt, hf, name, rebuild) for name, rebuild in reassemblers(ckpt).items()]
    if forward and report.ok:
        report.logits = _logits_check(ckpt, Path(hf_dir), rtol, tokens, device)
    return report


def relative_error(actual, expected) -> float:
    """max |actual - expected| / max |expected| (0 when both are zero)."""
    actual, expected = actual.double(), expected.double()
    scale = expected.abs().max().item()
    diff = (actual - expected).abs().max().item()
    return diff / scale if scale else diff


def config_check(ckpt: TrtllmCheckpoint, shape) -> Check:
    wrong = [
        f"{field} {ckpt.config.get(field)!r} != {getattr(shape, attr)!r}"
        for field, attr in SAME_FIELDS.items()
        if ckpt.config.get(field) != getattr(shape, attr)
    ]
    return Check(name="config.json", ok=not wrong, problem="; ".join(wrong) or None)


def names_check(ckpt: TrtllmCheckpoint, rank: int) -> Check:
    have, want = set(ckpt.weights(rank)), expected_rank_names(ckpt, rank)
    problems = [f"missing {n}" for n in sorted(want - have)] + [f"unexpected {n}" for n in sorted(have - want)]
    return Check(name=ckpt.rank_path(rank).name, ok=not problems, problem="; ".join(problems) or None)


def _weight_check(ckpt: TrtllmCheckpoint, hf: HFCheckpoint, name: str, rebuild) -> Check:
    import torch

    try:
        actual = rebuild()
    except LayoutMismatch as error:
        return Check(name=name, ok=False, problem=str(error))
    want_dtype = torch.float32 if ROUTER.search(name) else getattr(torch, ckpt.config["dtype"])
    expected = hf.read(name).to(want_dtype)
    if actual.dtype != want_dtype:
        return Check(name=name, ok=False, problem=f"dtype {actual.dtype} in the checkpoint, expected {want_dtype}")
    if actual.shape != expected.shape:
        return Check(name=name, ok=False, problem=f"rebuilt shape {list(actual.shape)} != source {list(expected.shape)}")
    return Check(name=name, max_rel_error=relative_error(actual, expected), ok=torch.equal(actual, expected))


def _logits_check(ckpt: TrtllmCheckpoint, hf_dir: Path, rtol: float, tokens: int, device: str) -> Check:
    import torch

    from engineforge.verify.emulate import emulate_logits

    ref = reference_run(ckpt, hf_dir, tokens, device)
    with torch.no_grad():
        actual = emulate_logits(ckpt, ref.input_ids, ref.cos, ref.sin, device)
    return logits_check(actual, ref.expected, rtol)


class ReferenceRun(NamedTuple):
    """What a forward pass over the rank files needs, and what it must produce."""

    input_ids: Any  # (1, tokens), seeded
    expected: Any  # transformers' float32 logits (batch, seq, vocab)
    cos: Any  # RoPE tables of the reference model (no weights), float32
    sin: Any


def reference_run(ckpt: TrtllmCheckpoint, hf_dir: Path, tokens: int, device: str) -> ReferenceRun:
    """Seeded test tokens, transformers' logits for them and the RoPE tables, on `device`."""
    import torch

    reference = _reference_model(hf_dir, getattr(torch, ckpt.config["dtype"]), device)
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, int(ckpt.config["vocab_size"]), (1, tokens), generator=generator).to(device)
    with torch.no_grad():
        expected = reference(input_ids).logits.float()
        positions = torch.arange(tokens, device=device)[None]
        cos, sin = reference.model.rotary_emb(expected, positions)  # RoPE tables only: no weights
    return ReferenceRun(input_ids, expected, cos.float(), sin.float())


def logits_check(actual, expected, rtol: float) -> Check:
    error = relative_error(actual, expected)
    return Check(name="logits", max_rel_error=error, ok=error <= rtol)


def _reference_model(hf_dir: Path, dtype, device: str):
    """transformers' model in float32 with weights rounded to the checkpoint's dtype, except the
    MoE router, which TensorRT-LLM keeps in float32 from the source."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).to(device).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if not ROUTER.search(name):
                param.copy_(param.to(dtype).float())
    return model
