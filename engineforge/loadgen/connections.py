"""The HTTP session of a run: aiohttp, one kept-alive connection per concurrency slot.

Why aiohttp and not httpx: measured on this 2-core machine against the mock server (TTFT
50 ms, ITL 10 ms, 32 streams), httpx added about 3 ms to TTFT p50 (per-chunk cost of its
pure-Python stack; its shared pool also queued bursts behind responses in flight, +40 ms),
aiohttp about 0.5 ms (C HTTP parser). See docs/notes/issue-6.md.

A slot is taken before a request is built and given back when its response ends, so the
slots cap the requests in flight and a request never waits inside the connection pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace

import aiohttp


class WireClock:
    """When each request is about to go out: its connection is open (new) or taken for reuse.

    Connecting is left out: a new connection costs the first wave of a run (DNS, handshake),
    not the server, and steady-state clients keep their connections alive.
    """

    def __init__(self) -> None:
        self.trace = aiohttp.TraceConfig()
        self.trace.on_connection_create_end.append(self._stamp)
        self.trace.on_connection_reuseconn.append(self._stamp)

    @staticmethod
    async def _stamp(session: aiohttp.ClientSession, context: SimpleNamespace, params: object) -> None:
        stamps = context.trace_request_ctx
        if stamps is not None and "start" not in stamps:
            stamps["start"] = time.perf_counter()


class ConnectionSlots:
    def __init__(self, slots: int, timeout_s: float):
        self._free = asyncio.Semaphore(slots)
        self.clock = WireClock()
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=slots, limit_per_host=0, ttl_dns_cache=300),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s),
            trace_configs=[self.clock.trace],
            auto_decompress=False,
        )

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[aiohttp.ClientSession]:
        """Wait for a free slot; send one request on the session inside the block."""
        async with self._free:
            yield self.session

    async def __aenter__(self) -> "ConnectionSlots":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.session.close()
