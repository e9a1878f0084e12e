"""What one benchmark run does: the endpoint, the prompts, the load shape and the limits."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Sample(BaseModel):
    """One request's input: a prompt (text or token ids) and, optionally, its exact output length."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | list[int] = Field(..., description="Prompt text, or token ids (completions API only).")
    output_tokens: int | None = Field(None, ge=1, description="Tokens to generate; default BenchConfig.max_tokens.")
    task_id: str | int | None = None


Prompt = str | Sample


def as_sample(prompt: Prompt) -> Sample:
    return prompt if isinstance(prompt, Sample) else Sample(prompt=prompt)


class BenchConfig(BaseModel):
    """One benchmark run against an OpenAI-compatible streaming endpoint.

    Fixed concurrency when `request_rate` is None: `concurrency` requests are always in flight.
    With `request_rate` (requests/s), arrivals are a gamma process (Poisson when burstiness is 1;
    lower is burstier) and `concurrency` caps the requests in flight.
    """

    model_config = ConfigDict(extra="forbid")

    endpoint: str = Field(..., description="Base URL, e.g. http://127.0.0.1:8000 (with or without /v1).")
    model: str = Field(..., description="Model name sent in each request.")
    api: Literal["completions", "chat"] = "completions"
    prompts: list[Prompt] = Field(..., min_length=1, description="Used in turn, cycling when requests > prompts.")
    requests: int = Field(8, ge=1, description="Measured requests (warm-up excluded).")
    concurrency: int = Field(1, ge=1, description="Requests in flight (cap on them with request_rate).")
    warmup_requests: int = Field(1, ge=0, description="Requests sent first and left out of the figures.")
    max_tokens: int = Field(16, ge=1)
    request_rate: float | None = Field(None, gt=0, description="Requests/s; None sends as fast as concurrency allows.")
    burstiness: float = Field(1.0, gt=0, description="Gamma shape of inter-arrival times; 1 is Poisson.")
    seed: int = Field(0, description="Seed of the arrival process.")
    timeout_s: float = Field(600.0, gt=0, description="Limit of one request, connect to last byte.")
    temperature: float | None = Field(None, ge=0, description="Sent when set; 0 asks for greedy decoding.")
    ignore_eos: bool = Field(False, description="Ask for exactly max_tokens (or the sample's output_tokens).")
    ignore_eos_style: Literal["field", "generation_config"] = Field(
        "field",
        description='"field": send ignore_eos/min_tokens (TensorRT-LLM, vLLM); '
        '"generation_config": send a generation_config that never stops at end-of-sequence (transformers serve).',
    )
    logprobs: bool = Field(False, description="Ask for the chosen tokens' logprobs (the accuracy check compares them).")
    include_usage: bool = Field(True, description="Send stream_options.include_usage to get exact token counts.")
    gpu_telemetry: bool = Field(
        True, description="Sample local GPUs through NVML during the run, when there are any (measure() does)."
    )
    extra_body: dict = Field(default_factory=dict, description="Extra fields merged into every request body.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra HTTP headers (e.g. authorization).")

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError('must start with "http://" or "https://"')
        return value.rstrip("/")

    @model_validator(mode="after")
    def _token_prompts_need_completions(self) -> "BenchConfig":
        if self.api == "chat" and any(isinstance(as_sample(p).prompt, list) for p in self.prompts):
            raise ValueError("token-id prompts need api='completions' (chat takes text)")
        return self

    def url(self) -> str:
        path = "/chat/completions" if self.api == "chat" else "/completions"
        base = self.endpoint if self.endpoint.endswith("/v1") else self.endpoint + "/v1"
        return base + path

    def sample(self, index: int) -> Sample:
        return as_sample(self.prompts[index % len(self.prompts)])
