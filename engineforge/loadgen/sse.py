"""Server-sent events of OpenAI streaming responses: split bytes into events, read each event.

`transformers serve` sends `data: {json}\\n\\n` events and ends the stream without `[DONE]`;
OpenAI, vLLM and trtllm-serve end with `data: [DONE]`. A mid-stream failure arrives as
`data: {"error": ...}`. Chat streams open with a role-only chunk that carries no text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

DONE = "[DONE]"


class SSEDecoder:
    """Incremental decoder: feed bytes as they arrive, get the `data:` payloads completed so far."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[str]:
        self._buffer += data
        if b"\r" in self._buffer:
            self._buffer = self._buffer.replace(b"\r\n", b"\n")
        *events, self._buffer = self._buffer.split(b"\n\n")
        return [payload for event in events if (payload := _event_data(event)) is not None]

    def flush(self) -> list[str]:
        """Payload of a last event the server did not terminate with a blank line."""
        rest, self._buffer = self._buffer, b""
        payload = _event_data(rest)
        return [] if payload is None else [payload]


def _event_data(event: bytes) -> str | None:
    lines = [line[5:].removeprefix(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(lines).decode("utf-8") if lines else None


@dataclass(slots=True)
class Chunk:
    """What one streamed event says: new text, token usage, an error, or the end of the stream."""

    text: str = ""
    usage: dict[str, Any] | None = None
    error: str | None = None
    finish_reason: str | None = None
    logprobs: list[float] | None = None
    done: bool = False


def read_chunk(payload: str, api: Literal["completions", "chat"]) -> Chunk:
    if payload.strip() == DONE:
        return Chunk(done=True)
    try:
        data = json.loads(payload)
    except json.JSONDecodeError:
        return Chunk(error=f"unparseable stream event: {payload[:200]!r}")
    if not isinstance(data, dict):
        return Chunk(error=f"unexpected stream event: {payload[:200]!r}")
    if "error" in data:
        error = data["error"]
        return Chunk(error=str(error.get("message", error) if isinstance(error, dict) else error))
    text_parts = []
    finish_reason = None
    logprobs: list[float] | None = None
    for choice in data.get("choices") or ():
        finish_reason = choice.get("finish_reason") or finish_reason
        if api == "chat":
            delta = choice.get("delta") or {}
            text_parts.append(delta.get("content") or "")
            text_parts.append(delta.get("reasoning_content") or "")
        else:
            text_parts.append(choice.get("text") or "")
        logprobs = _logprobs(choice.get("logprobs"), api) or logprobs
    return Chunk(text="".join(text_parts), usage=data.get("usage") or None, finish_reason=finish_reason, logprobs=logprobs)


def _logprobs(value: Any, api: str) -> list[float] | None:
    """Chosen-token logprobs: completions `token_logprobs`, chat `content[].logprob`."""
    if not isinstance(value, dict):
        return None
    if api == "chat":
        return [float(item["logprob"]) for item in value.get("content") or () if item.get("logprob") is not None]
    return [float(v) for v in value.get("token_logprobs") or () if v is not None]
