"""An HTTP double served on a thread of the test's own process."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from socketserver import BaseServer
from typing import TypeVar

Server = TypeVar("Server", bound=BaseServer)


@contextlib.contextmanager
def on_thread(server: Server, poll_interval: float = 0.5) -> Iterator[Server]:
    """Serve `server` on a daemon thread; yield it; shut it down and close its socket after."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
