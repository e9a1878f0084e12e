"""What quantization cost: the quantized model against its unquantized source on held-out text.

Perplexity of both (next-token, padding masked), the share of positions whose top-1 token agrees,
and the largest relative logit error (per position, max |quantized - source| over max |source|).
"""

from __future__ import annotations

from pydantic import BaseModel

from engineforge.recipe.schema import QuantizeGates


class HeldOutLogits(BaseModel):
    """The source model's outputs kept for comparison (CPU tensors, one per batch)."""

    model_config = {"arbitrary_types_allowed": True}
    logits: list  # float32 tensors (batch, seq, vocab)
    nll_sum: float
    tokens: int


class AccuracyFigures(BaseModel):
    source_perplexity: float
    quantized_perplexity: float
    perplexity_increase: float  # relative: quantized / source - 1
    token_agreement: float
    max_relative_logit_error: float
    positions: int

    def failures(self, gates: QuantizeGates) -> list[str]:
        failed = []
        if gates.max_perplexity_increase is not None and not self.perplexity_increase <= gates.max_perplexity_increase:
            failed.append(f"perplexity increase {self.perplexity_increase:.4f} > max_perplexity_increase "
                          f"{gates.max_perplexity_increase}")
        if gates.min_token_agreement is not None and not self.token_agreement >= gates.min_token_agreement:
            failed.append(f"top-1 token agreement {self.token_agreement:.4f} < min_token_agreement {gates.min_token_agreement}")
        return failed

    def metrics(self) -> dict[str, float]:
        return {f"quantize_{name}": float(value) for name, value in self.model_dump().items()}


def held_out_logits(model, batches: list[dict]) -> HeldOutLogits:
    import torch

    logits, nll, tokens = [], 0.0, 0
    with torch.no_grad():
        for batch in batches:
            out = model(**batch).logits.float().cpu()
            batch_nll, batch_tokens = _nll(out, batch)
            logits.append(out)
            nll, tokens = nll + batch_nll, tokens + batch_tokens
    return HeldOutLogits(logits=logits, nll_sum=nll, tokens=tokens)


def compare(source: HeldOutLogits, quantized: HeldOutLogits, batches: list[dict]) -> AccuracyFigures:
    import math

    import torch

    agree, positions, worst = 0, 0, 0.0
    for ref, got, batch in zip(source.logits, quantized.logits, batches):
        mask = batch["attention_mask"].cpu().bool()
        agree += int(((ref.argmax(-1) == got.argmax(-1)) & mask).sum())
        positions += int(mask.sum())
        error = (got - ref).abs().amax(-1) / ref.abs().amax(-1).clamp_min(torch.finfo(torch.float32).tiny)
        worst = max(worst, float(error[mask].max()))
    source_ppl = math.exp(source.nll_sum / source.tokens)
    quantized_ppl = math.exp(quantized.nll_sum / quantized.tokens)
    return AccuracyFigures(
        source_perplexity=source_ppl, quantized_perplexity=quantized_ppl,
        perplexity_increase=quantized_ppl / source_ppl - 1, token_agreement=agree / positions,
        max_relative_logit_error=worst, positions=positions,
    )


def _nll(logits, batch: dict) -> tuple[float, int]:
    """Summed next-token negative log-likelihood over real (unpadded) targets, and their count."""
    import torch

    targets = batch["input_ids"][:, 1:].cpu()
    valid = batch["attention_mask"][:, 1:].cpu().bool()
    losses = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), targets, reduction="none")
    return float(losses[valid].sum()), int(valid.sum())
