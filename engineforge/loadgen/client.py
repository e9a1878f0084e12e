"""Send one streaming request and time it: first text, every text chunk, last byte.

The clock starts when the request reaches the network (aiohttp's trace of the connection being
opened or reused), so time the harness spends before that is not charged to the server; it
shows as the record's send lag (start_s - scheduled_s). A failure (HTTP status, connection,
timeout, an error event in the stream) becomes the record's `error`; it never escapes, so one
bad request cannot stop a run.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from engineforge.loadgen.body import request_body
from engineforge.loadgen.config import BenchConfig
from engineforge.loadgen.records import RequestRecord
from engineforge.loadgen.sse import SSEDecoder, read_chunk

ERROR_BODY_BYTES = 300


async def send_request(
    session: aiohttp.ClientSession,
    config: BenchConfig,
    index: int,
    prompt_index: int,
    clock_zero: float,
    scheduled_s: float,
) -> RequestRecord:
    record = RequestRecord(index=index, prompt_index=prompt_index, scheduled_s=scheduled_s, start_s=0.0)
    stream = _StreamState(record, config.api)
    stamps: dict[str, float] = {}
    body = request_body(config, config.sample(prompt_index))
    fallback_start = time.perf_counter()
    try:
        async with asyncio.timeout(config.timeout_s):
            await _stream(session, config, body, stamps, stream, fallback_start)
    except TimeoutError:
        record.error = f"timeout after {config.timeout_s:g} s"
    except aiohttp.ClientError as error:
        record.error = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    start = stamps.get("start", fallback_start)
    record.start_s = start - clock_zero
    record.e2e_s = time.perf_counter() - start
    stream.finish()
    return record


class _StreamState:
    """Collects the chunks of one response into its record."""

    def __init__(self, record: RequestRecord, api: str):
        self.record = record
        self.api = api
        self.texts: list[str] = []
        self.usage: dict | None = None

    def take(self, payload: str, arrived_s: float) -> None:
        chunk = read_chunk(payload, self.api)
        if chunk.error is not None:
            self.record.error = chunk.error
            return
        if chunk.text:
            self.texts.append(chunk.text)
            self.record.token_times_s.append(arrived_s)
        self.usage = chunk.usage or self.usage
        self.record.finish_reason = chunk.finish_reason or self.record.finish_reason

    def finish(self) -> None:
        record = self.record
        record.output_text = "".join(self.texts)
        record.ttft_s = record.token_times_s[0] if record.token_times_s else None
        record.output_tokens = len(self.texts)
        if self.usage:
            record.output_tokens = int(self.usage.get("completion_tokens") or record.output_tokens)
            if self.usage.get("prompt_tokens") is not None:
                record.prompt_tokens = int(self.usage["prompt_tokens"])


async def _stream(
    session: aiohttp.ClientSession,
    config: BenchConfig,
    body: dict,
    stamps: dict[str, float],
    stream: _StreamState,
    fallback_start: float,
) -> None:
    # The loop only stamps and keeps the bytes; parsing waits until the response has ended,
    # so a burst of chunks from many streams is stamped when it arrives, not after the parsing.
    arrivals: list[tuple[float, bytes]] = []
    clock = time.perf_counter
    async with session.post(config.url(), json=body, headers=config.headers, trace_request_ctx=stamps) as response:
        start = stamps.get("start", fallback_start)
        if response.status != 200:
            detail = (await response.content.read(ERROR_BODY_BYTES)).decode("utf-8", "replace").strip()
            stream.record.error = f"HTTP {response.status}: {detail}"
            return
        try:
            async for data in response.content.iter_any():
                arrivals.append((clock() - start, data))
        finally:
            _parse(arrivals, stream)


def _parse(arrivals: list[tuple[float, bytes]], stream: _StreamState) -> None:
    decoder = SSEDecoder()
    for arrived, data in arrivals:
        for payload in decoder.feed(data):
            stream.take(payload, arrived)
            if stream.record.error is not None:
                return
    for payload in decoder.flush():
        stream.take(payload, arrivals[-1][0])
