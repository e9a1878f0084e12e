"""Accuracy check: greedy-decode a fixed prompt set through the endpoint and through the source
model in-process, and compare them token by token.

The endpoint returns text, so both outputs are compared as the tokenizer encodes their text
(the reference's tokens decoded and re-encoded the same way), which keeps a tokenization
round trip from counting as a disagreement. Agreement of a prompt is the share of reference
tokens the endpoint reproduced before the first divergence: after greedy decodes diverge,
their contexts differ and later positions say nothing. Where the endpoint sends logprobs they
are compared with the reference's over the agreeing prefix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from engineforge.loadgen.config import BenchConfig
from engineforge.loadgen.runner import run_benchmark


class AccuracyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint: str
    model: str = Field(..., description="Model name sent to the endpoint.")
    reference_model: str = Field(..., description="Source model (directory or hub id) decoded in-process.")
    api: Literal["completions", "chat"] = "completions"
    prompts: list[str] = Field(..., min_length=1)
    max_tokens: int = Field(16, ge=1)
    dtype: str = Field("float32", description="Reference dtype: float32, bfloat16, float16 or auto.")
    device: str = "cpu"
    logprobs: bool = Field(False, description="Ask the endpoint for logprobs (servers that ignore it still work).")
    timeout_s: float = Field(600.0, gt=0)
    trust_remote_code: bool = False


class PromptAgreement(BaseModel):
    prompt_index: int
    reference_tokens: list[int]
    served_tokens: list[int]
    reference_text: str
    served_text: str
    matched_tokens: int = Field(..., description="Reference tokens reproduced before the first divergence.")
    agreement: float = Field(..., description="matched_tokens / reference tokens.")
    first_divergence: int | None = Field(..., description="First token position that differs; None if identical.")
    logprob_max_abs_diff: float | None = None
    error: str | None = None


class AccuracyReport(BaseModel):
    prompts: list[PromptAgreement]

    @property
    def token_agreement(self) -> float:
        """Matched prefix tokens over reference tokens, all prompts pooled (a failed request matches none)."""
        total = sum(len(p.reference_tokens) for p in self.prompts)
        matched = sum(p.matched_tokens for p in self.prompts)
        return matched / total if total else 1.0

    @property
    def exact_match_rate(self) -> float:
        return sum(p.first_divergence is None and p.error is None for p in self.prompts) / len(self.prompts)

    def figures(self) -> dict[str, float]:
        diffs = [p.logprob_max_abs_diff for p in self.prompts if p.logprob_max_abs_diff is not None]
        return {
            "token_agreement": self.token_agreement,
            "exact_match_rate": self.exact_match_rate,
            "logprob_max_abs_diff": max(diffs) if diffs else float("nan"),
        }


def first_divergence(reference: Sequence[int], served: Sequence[int]) -> int | None:
    """First position where the sequences differ (a shorter one diverges where it ends)."""
    for position, (a, b) in enumerate(zip(reference, served)):
        if a != b:
            return position
    return None if len(reference) == len(served) else min(len(reference), len(served))


def compare(
    prompt_index: int,
    reference_tokens: list[int],
    served_tokens: list[int],
    reference_text: str = "",
    served_text: str = "",
    reference_logprobs: Sequence[float] | None = None,
    served_logprobs: Sequence[float] | None = None,
) -> PromptAgreement:
    divergence = first_divergence(reference_tokens, served_tokens)
    matched = len(reference_tokens) if divergence is None else min(divergence, len(reference_tokens))
    logprob_diff = None
    if reference_logprobs and served_logprobs:
        upto = min(matched, len(reference_logprobs), len(served_logprobs))
        if upto:
            logprob_diff = float(np.max(np.abs(np.subtract(reference_logprobs[:upto], served_logprobs[:upto]))))
    return PromptAgreement(
        prompt_index=prompt_index,
        reference_tokens=reference_tokens,
        served_tokens=served_tokens,
        reference_text=reference_text,
        served_text=served_text,
        matched_tokens=matched,
        agreement=matched / len(reference_tokens) if reference_tokens else float(not served_tokens),
        first_divergence=divergence,
        logprob_max_abs_diff=logprob_diff,
    )


def check_accuracy(config: AccuracyConfig) -> AccuracyReport:
    """Decode every prompt both ways (greedy, max_tokens) and compare."""
    from engineforge.measure.reference import Reference

    served = run_benchmark(
        BenchConfig(
            endpoint=config.endpoint, model=config.model, api=config.api, prompts=config.prompts,
            requests=len(config.prompts), concurrency=1, warmup_requests=0, max_tokens=config.max_tokens,
            temperature=0.0, logprobs=config.logprobs, timeout_s=config.timeout_s,
        )
    )
    reference = Reference(config.reference_model, config.dtype, config.device, config.trust_remote_code)
    results = []
    for record in served.records:
        expected = reference.generate(config.prompts[record.prompt_index], config.max_tokens, config.api)
        reference_tokens = reference.encode_output(expected.text)
        if record.error is not None:
            results.append(
                PromptAgreement(
                    prompt_index=record.prompt_index, reference_tokens=reference_tokens, served_tokens=[],
                    reference_text=expected.text, served_text="", matched_tokens=0, agreement=0.0, first_divergence=0, error=record.error,
                )
            )
            continue
        results.append(
            compare(
                record.prompt_index, reference_tokens, reference.encode_output(record.output_text),
                expected.text, record.output_text, expected.logprobs, record.token_logprobs,
            )
        )
    return AccuracyReport(prompts=results)
