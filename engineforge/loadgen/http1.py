"""An HTTP/1.1 client connection that stamps every piece of a response as it arrives.

The clock is read in `data_received`, straight from the event loop's socket callback, before
any parsing; parsing (h11) runs afterwards, once per loop pass. So when many streams deliver a
token at the same moment, each piece keeps its own arrival time instead of the time some
library hands it to the caller. Measured against the mock server (TTFT 50 ms, 32 streams, this
2-core machine): httpx read TTFT p50 52.8 ms, aiohttp 50.6 to 52.5 ms depending on the
other load, stamping here 50.2 to 50.4 ms (docs/notes/issue-6.md).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import h11

Deliver = Callable[[float, bytes], None]
USER_AGENT = "engineforge-loadgen"


class ConnectionClosed(ConnectionError):
    """The server closed the connection before the response ended."""


class _Protocol(asyncio.Protocol):
    def __init__(self, connection: "Connection"):
        self._connection = connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self._connection._arrived(time.perf_counter(), data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connection._arrived(time.perf_counter(), b"")


class Connection:
    """One kept-alive connection; one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, host: str):
        self._loop = loop
        self._host = host
        self._h11 = h11.Connection(our_role=h11.CLIENT)
        self._transport: asyncio.Transport | None = None
        self._pending: list[tuple[float, bytes]] = []
        self._parse_scheduled = False
        self._deliver: Deliver | None = None
        self._status: asyncio.Future[int] | None = None
        self._done: asyncio.Future[None] | None = None

    @classmethod
    async def open(cls, url: str, ssl_context: ssl.SSLContext | None = None) -> "Connection":
        parts = urlsplit(url)
        secure = parts.scheme == "https"
        port = parts.port or (443 if secure else 80)
        loop = asyncio.get_running_loop()
        connection = cls(loop, parts.netloc)
        context = (ssl_context or ssl.create_default_context()) if secure else None
        connection._transport, _ = await loop.create_connection(
            lambda: _Protocol(connection), parts.hostname, port, ssl=context
        )
        return connection

    @property
    def reusable(self) -> bool:
        """Open and between requests (a cancelled or failed request leaves it unusable)."""
        states = (self._h11.our_state, self._h11.their_state)
        open_ = self._transport is not None and not self._transport.is_closing()
        return open_ and states in ((h11.IDLE, h11.IDLE), (h11.DONE, h11.DONE))

    @property
    def response_started(self) -> bool:
        return self._status is not None and self._status.done()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def post(self, target: str, body: bytes, headers: dict[str, str], deliver: Deliver) -> tuple[int, float]:
        """Send a POST; `deliver(arrival_time, body_bytes)` gets the response body piece by piece.

        Returns (status, send time) once the response has ended.
        """
        if self._h11.our_state is h11.DONE:
            self._h11.start_next_cycle()
        request_headers = [
            ("host", self._host), ("user-agent", USER_AGENT), ("accept", "text/event-stream"),
            ("content-type", "application/json"), ("content-length", str(len(body))),
            *headers.items(),
        ]
        out = self._h11.send(h11.Request(method="POST", target=target, headers=request_headers))
        out += self._h11.send(h11.Data(data=body)) + self._h11.send(h11.EndOfMessage())
        self._deliver = deliver
        self._status = self._loop.create_future()
        self._done = self._loop.create_future()
        sent = time.perf_counter()
        self._transport.write(out)
        try:
            await self._done
        finally:
            self._deliver = None
        return self._status.result(), sent

    # -- receiving: stamp in the callback, parse after the other sockets of this pass --

    def _arrived(self, when: float, data: bytes) -> None:
        self._pending.append((when, data))
        if not self._parse_scheduled:
            self._parse_scheduled = True
            self._loop.call_soon(self._parse)

    def _parse(self) -> None:
        self._parse_scheduled = False
        pending, self._pending = self._pending, []
        try:
            for when, data in pending:
                self._h11.receive_data(data)
                self._drain_events(when)
        except h11.ProtocolError as error:
            self._finish(error)
            self.close()

    def _drain_events(self, when: float) -> None:
        while True:
            event = self._h11.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Response):
                if self._status is not None and not self._status.done():
                    self._status.set_result(event.status_code)
            elif isinstance(event, h11.Data):
                if self._deliver is not None:
                    self._deliver(when, bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                self._finish(None)
                if self._h11.their_state is not h11.DONE or self._h11.our_state is not h11.DONE:
                    self.close()
                return
            elif isinstance(event, h11.ConnectionClosed):
                self._finish(ConnectionClosed("server closed the connection before the response ended"))
                self.close()
                return

    def _finish(self, error: BaseException | None) -> None:
        if self._done is None or self._done.done():
            return
        if error is None:
            self._done.set_result(None)
        else:
            self._done.set_exception(error)
