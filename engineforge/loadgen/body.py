"""The JSON body of one streaming request, from the config and the request's sample."""

from __future__ import annotations

import json
from typing import Any

from engineforge.loadgen.config import BenchConfig, Sample


def request_body(config: BenchConfig, sample: Sample) -> dict[str, Any]:
    max_tokens = sample.output_tokens or config.max_tokens
    body: dict[str, Any] = {"model": config.model, "stream": True, "max_tokens": max_tokens}
    if config.api == "chat":
        body["messages"] = [{"role": "user", "content": sample.prompt}]
    else:
        body["prompt"] = sample.prompt
    if config.include_usage:
        body["stream_options"] = {"include_usage": True}
    if config.logprobs:
        body["logprobs"] = True if config.api == "chat" else 1
    if config.temperature is not None:
        body["temperature"] = config.temperature
    if config.ignore_eos:
        if config.ignore_eos_style == "field":
            body["ignore_eos"] = True
            body["min_tokens"] = max_tokens
        else:
            # transformers serve replaces the model's generation config with this one. An end-of-
            # sequence id that never occurs makes generate() run to max_new_tokens; min_new_tokens
            # is ignored under --continuous-batching (checked with transformers 5.24).
            generation = {"max_new_tokens": max_tokens, "eos_token_id": -1}
            if config.temperature == 0:
                generation["do_sample"] = False
            body["generation_config"] = json.dumps(generation)
    body.update(config.extra_body)
    return body
