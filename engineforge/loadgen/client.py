"""Send one streaming request and time it: first text, every text chunk, last byte.

The clock starts when the request body is written to an open connection (connecting is left
out: a new connection costs the first wave of a run, not the server); time the harness spends
before that shows as the record's send lag (start_s - scheduled_s). Each piece of the body is
stamped as aiohttp hands it over (connections.py); the stream is parsed after it ends, so
parsing never delays a stamp. A failure (HTTP status,
connection, timeout, an error event in the stream) becomes the record's `error`; it never
escapes, so one bad request cannot stop a run.
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from engineforge.loadgen.body import request_body
from engineforge.loadgen.config import BenchConfig
from engineforge.loadgen.connections import Slot
from engineforge.loadgen.records import RequestRecord
from engineforge.loadgen.sse import SSEDecoder, read_chunk

ERROR_BODY_BYTES = 300


async def send_request(
    slot: Slot, config: BenchConfig, index: int, prompt_index: int, clock_zero: float, scheduled_s: float
) -> RequestRecord:
    record = RequestRecord(index=index, prompt_index=prompt_index, scheduled_s=scheduled_s, start_s=0.0)
    body = json.dumps(request_body(config, config.sample(prompt_index))).encode()
    arrivals: list[tuple[float, bytes]] = []
    start = time.perf_counter()
    status = 0
    try:
        async with asyncio.timeout(config.timeout_s):
            status, start = await slot.post(config.url(), body, config.headers, lambda t, data: arrivals.append((t, data)))
    except TimeoutError:
        record.error = f"timeout after {config.timeout_s:g} s"
    except (OSError, aiohttp.ClientError) as error:
        record.error = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    end = arrivals[-1][0] if arrivals and record.error is None else time.perf_counter()
    record.start_s = start - clock_zero
    record.e2e_s = end - start
    if record.error is None and status != 200:
        detail = b"".join(data for _, data in arrivals)[:ERROR_BODY_BYTES].decode("utf-8", "replace").strip()
        record.error = f"HTTP {status}: {detail}"
    _StreamState(record, config.api).read(arrivals, start)
    return record


class _StreamState:
    """Reads the streamed events of one response into its record."""

    def __init__(self, record: RequestRecord, api: str):
        self.record = record
        self.api = api
        self.texts: list[str] = []
        self.usage: dict | None = None

    def read(self, arrivals: list[tuple[float, bytes]], start: float) -> None:
        if self.record.error is None:
            decoder = SSEDecoder()
            for arrived, data in arrivals:
                for payload in decoder.feed(data):
                    self.take(payload, arrived - start)
            for payload in decoder.flush():
                self.take(payload, arrivals[-1][0] - start)
        self.finish()

    def take(self, payload: str, arrived_s: float) -> None:
        if self.record.error is not None:
            return
        chunk = read_chunk(payload, self.api)
        if chunk.error is not None:
            self.record.error = chunk.error
            return
        if chunk.text:
            self.texts.append(chunk.text)
            self.record.token_times_s.append(arrived_s)
        if chunk.logprobs:
            self.record.token_logprobs = (self.record.token_logprobs or []) + chunk.logprobs
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
