"""A loopback OpenAI-compatible streaming server with known timing, for tests and bench/.

Each streamed response sends its first token `ttft_ms` after the request has been read and
one more every `itl_ms`, on absolute deadlines (no drift), then a usage chunk and `[DONE]`.
It generates `max_tokens` tokens. Prompts starting with `!status=NNN` get that HTTP status;
`!error` gets an error event after the first token (as transformers serve sends one).

Run it as `python -m engineforge.loadgen.mock_server --ttft-ms 50 --itl-ms 10`; it prints
`listening on http://127.0.0.1:PORT` and serves until killed. `mock_server(...)` does that
in a child process (so the server never competes with the harness for the GIL).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

MAX_HEADER_BYTES = 65536


def _frame(payload: str) -> bytes:
    """One SSE event as one HTTP/1.1 chunk."""
    data = f"data: {payload}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(data), data)


def _chunk_json(api: str, index: int, text: str | None, usage: dict | None = None, role: bool = False) -> str:
    if api == "chat":
        delta = {"role": "assistant"} if role else ({"content": text} if text is not None else {})
        choices = [{"index": 0, "delta": delta, "finish_reason": None if usage is None else "length"}]
        kind = "chat.completion.chunk"
    else:
        choices = [{"index": 0, "text": text or "", "finish_reason": None if usage is None else "length"}]
        kind = "text_completion"
    chunk = {"id": f"mock-{index}", "object": kind, "model": "mock", "choices": choices}
    if usage is not None:
        chunk["usage"] = usage
    return json.dumps(chunk)


class MockServer:
    """Thread per connection: `time.sleep` wakes within tens of microseconds, where asyncio's
    timers round up to the millisecond, and the timing is what the tests check."""

    def __init__(self, ttft_ms: float, itl_ms: float, send_done: bool = True, send_usage: bool = True):
        self.ttft = ttft_ms / 1000.0
        self.itl = itl_ms / 1000.0
        self.send_done = send_done
        self.send_usage = send_usage
        self._served = itertools.count(1)

    def handle(self, connection: socket.socket) -> None:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = connection.makefile("rb")
        try:
            while self._one_request(reader, connection):
                pass
        except (OSError, ValueError):
            pass
        finally:
            reader.close()
            connection.close()

    def _one_request(self, reader, connection: socket.socket) -> bool:
        request_line = reader.readline(MAX_HEADER_BYTES)
        if not request_line:
            return False
        headers = {}
        while (line := reader.readline(MAX_HEADER_BYTES)) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = json.loads(reader.read(int(headers.get("content-length", "0"))) or b"{}")
        received = time.perf_counter()
        method, path, _ = request_line.decode("latin-1").split(" ", 2)
        keep_alive = headers.get("connection", "").lower() != "close"
        if method == "GET":
            self._respond(connection, 200, b'{"object": "list", "data": [{"id": "mock"}]}')
            return keep_alive
        api = "chat" if path.endswith("/chat/completions") else "completions"
        prompt = body["messages"][-1]["content"] if api == "chat" else body.get("prompt", "")
        if isinstance(prompt, str) and prompt.startswith("!status="):
            status = int(prompt[len("!status="):].split()[0])
            self._respond(connection, status, json.dumps({"error": {"message": f"mock status {status}"}}).encode())
            return keep_alive
        self._stream(connection, api, body, received, fail=prompt == "!error")
        return keep_alive

    @staticmethod
    def _respond(connection: socket.socket, status: int, content: bytes) -> None:
        connection.sendall(
            b"HTTP/1.1 %d MOCK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (status, len(content), content)
        )

    def _stream(self, connection: socket.socket, api: str, body: dict, received: float, fail: bool) -> None:
        index = next(self._served)
        tokens = int(body.get("max_tokens") or 16)
        pending = [b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"]
        if api == "chat":
            pending.append(_frame(_chunk_json(api, index, None, role=True)))
        for k in range(tokens):
            delay = received + self.ttft + k * self.itl - time.perf_counter()
            if delay > 0:
                connection.sendall(b"".join(pending))
                pending.clear()
                time.sleep(delay)
            if fail and k == 1:
                pending.append(_frame('{"error": "mock failure mid-stream"}') + b"0\r\n\r\n")
                break
            pending.append(_frame(_chunk_json(api, index, f" t{k}")))
        else:
            if self.send_usage:
                usage = {"prompt_tokens": 4, "completion_tokens": tokens, "total_tokens": tokens + 4}
                pending.append(_frame(_chunk_json(api, index, None, usage=usage)))
            if self.send_done:
                pending.append(_frame("[DONE]"))
            pending.append(b"0\r\n\r\n")
        connection.sendall(b"".join(pending))


def serve(port: int, server: MockServer) -> None:
    sys.setswitchinterval(0.0002)  # a woken sender gets the GIL quickly
    listener = socket.create_server(("127.0.0.1", port), backlog=1024)
    print(f"listening on http://127.0.0.1:{listener.getsockname()[1]}", flush=True)
    while True:
        connection, _ = listener.accept()
        threading.Thread(target=server.handle, args=(connection,), daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    parser.add_argument("--itl-ms", type=float, default=10.0)
    parser.add_argument("--no-done", action="store_true", help="End streams without [DONE] (like transformers serve).")
    parser.add_argument("--no-usage", action="store_true", help="Send no usage chunk.")
    args = parser.parse_args(argv)
    server = MockServer(args.ttft_ms, args.itl_ms, send_done=not args.no_done, send_usage=not args.no_usage)
    with contextlib.suppress(KeyboardInterrupt):
        serve(args.port, server)


@contextlib.contextmanager
def mock_server(ttft_ms: float = 50.0, itl_ms: float = 10.0, *flags: str) -> Iterator[str]:
    """Start the mock server in a child process; yield its base URL; stop it after."""
    argv = [sys.executable, "-m", "engineforge.loadgen.mock_server", "--ttft-ms", str(ttft_ms), "--itl-ms", str(itl_ms), *flags]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError(f"mock server did not start (exit {process.poll()}): {line!r}")
        yield line.split()[-1]
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
