"""The connections of a run: one kept-alive HTTP/1.1 connection per concurrency slot.

A slot is taken before a request is sent and given back when its response has ended, so the
slots cap the requests in flight and no request ever queues behind another on a connection
(httpx's shared pool did that to bursts, adding tens of milliseconds to TTFT).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from engineforge.loadgen.http1 import Connection, Deliver


class Slot:
    def __init__(self, origin: str, ssl_context: ssl.SSLContext | None):
        self._origin = origin
        self._ssl = ssl_context
        self.connection: Connection | None = None

    async def post(self, url: str, body: bytes, headers: dict[str, str], deliver: Deliver) -> tuple[int, float]:
        """POST on this slot's connection, opening it if needed; (status, send time).

        A kept-alive connection the server closed while idle is replaced once, when nothing
        of the response had arrived yet.
        """
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        while True:
            fresh = self.connection is None or not self.connection.reusable
            if fresh:
                self.close()
                self.connection = await Connection.open(self._origin, self._ssl)
            try:
                return await self.connection.post(target, body, headers, deliver)
            except ConnectionError:
                started = self.connection.response_started
                self.close()
                if fresh or started:
                    raise
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class ConnectionSlots:
    def __init__(self, slots: int, url: str):
        parts = urlsplit(url)
        context = ssl.create_default_context() if parts.scheme == "https" else None
        origin = f"{parts.scheme}://{parts.netloc}"
        self._slots = [Slot(origin, context) for _ in range(slots)]
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
        for slot in self._slots:
            slot.close()
