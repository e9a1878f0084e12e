"""The connections of a run: one kept-alive HTTP/1.1 connection per concurrency slot (aiohttp).

A slot is taken before a request is sent and given back when its response has ended, so the
slots cap the requests in flight and no request ever queues behind another on a connection
(a shared pool did that to bursts with httpx, adding tens of milliseconds to TTFT). Each slot
is an aiohttp session whose connector holds one connection (aiohttp sets TCP_NODELAY).

The send time is taken in aiohttp's request-chunk-sent hook, right before the body goes out
with the buffered headers; each piece of the response body is stamped when aiohttp hands it
over, after its C parser has run. At 32 streams that read TTFT and ITL as the hand-written
client did, which stamped in the socket callback (bench/loadgen_bench.py, BENCHMARKS.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp

USER_AGENT = "engineforge-loadgen"
Deliver = Callable[[float, bytes], None]


@dataclass
class _Sending:
    """What aiohttp's trace hooks tell about one request: when its body was written, on which connection."""

    sent: float | None = None
    reused: bool = False
    responded: bool = False  # the status line arrived


async def _body_written(session, context, params) -> None:
    if context.trace_request_ctx.sent is None:
        context.trace_request_ctx.sent = time.perf_counter()


async def _connection_reused(session, context, params) -> None:
    context.trace_request_ctx.reused = True


def _trace_config() -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig()
    trace.on_request_chunk_sent.append(_body_written)
    trace.on_connection_reuseconn.append(_connection_reused)
    return trace


class Slot:
    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=1, ttl_dns_cache=None),
                timeout=aiohttp.ClientTimeout(total=None),  # the caller's asyncio.timeout limits a request
                headers={"user-agent": USER_AGENT, "accept": "text/event-stream", "content-type": "application/json"},
                trace_configs=[_trace_config()],
            )
        return self._session

    async def post(self, url: str, body: bytes, headers: dict[str, str], deliver: Deliver) -> tuple[int, float]:
        """POST on this slot's connection; `deliver(arrival_time, bytes)` gets the body as it arrives.

        Returns (status, send time) once the response has ended. A kept-alive connection the server
        closed while idle is replaced once, when nothing of the response had arrived yet (aiohttp
        retries only idempotent methods itself).
        """
        session = self._open()
        sending = _Sending()
        try:
            return await _post(session, url, body, headers, deliver, sending)
        except aiohttp.ServerDisconnectedError:
            if not sending.reused or sending.responded:
                raise
        return await _post(session, url, body, headers, deliver, _Sending())

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _post(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str], deliver: Deliver,
                sending: _Sending) -> tuple[int, float]:
    async with session.post(url, data=body, headers=headers, trace_request_ctx=sending) as response:
        sending.responded = True
        async for data in response.content.iter_any():
            deliver(time.perf_counter(), data)
        return response.status, sending.sent


class ConnectionSlots:
    def __init__(self, slots: int):
        self._slots = [Slot() for _ in range(slots)]
        # last in, first out: a request takes the slot freed most recently, whose connection is
        # open, so an open loop at low concurrency does not open a connection per slot
        self._free: asyncio.LifoQueue[Slot] = asyncio.LifoQueue()
        for slot in self._slots:
            self._free.put_nowait(slot)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        """Wait for a free slot; it is yours until the block ends."""
        slot = await self._free.get()
        try:
            yield slot
        finally:
            self._free.put_nowait(slot)

    async def __aenter__(self) -> "ConnectionSlots":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.gather(*(slot.close() for slot in self._slots))
