"""A loopback OpenAI-compatible streaming server with known timing, for tests and bench/.

Each streamed response sends its first token `ttft_ms` after the request has been read and
one more every `itl_ms`, on absolute deadlines (no drift), then a usage chunk and `[DONE]`.
It generates `max_tokens` tokens. Prompts starting with `!status=NNN` get that HTTP status;
`!error` gets an error event after the first token (as transformers serve sends one).
With `spread` > 0 the server is as fast or slow as a real one that was started anew: at its start it draws a
speed factor from a seeded normal, N(1, spread) (`random.Random(seed)`), and keeps `ttft_ms` and `itl_ms`
times that factor for its whole life. Over server starts each delay then has the nominal value as its true
mean and `spread` times it as its standard deviation; within one server there is no such noise. `factor` is
the drawn value. `late_s` is the most any token went out after its deadline: what the machine added (a
thread that got the CPU late), by the server's own clock.
With `burst` > 1 the server holds each token until `burst` of them are due and writes them in one write, as a
loaded server flushing a burst does: the client reads them together, with one arrival stamp.
`GET /mock/timings` returns (and forgets) the delays the server really kept for each streamed
response since the last call, `{"ttft_s": [...], "itl_s": [...]}` from reading the request to
writing each token, so a benchmark can tell the client's timing error from the server's lateness
on a loaded machine.

Run it as `python tests/doubles/openai_server.py --ttft-ms 50 --itl-ms 10`; it prints
`listening on http://127.0.0.1:PORT` and serves until killed. `mock_server(...)` does that
in a child process (so the server never competes with the harness for the GIL); `served(...)` runs it on a
thread of this process, for many short-lived servers (a child process takes longer to start than they live).

Built on the standard library's `http.server` with a thread per connection: `time.sleep`
wakes within tens of microseconds, where asyncio's timers round up to the millisecond, and
the timing is what the tests check. Only the streamed body's chunked framing is written here.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _frame(payload: str) -> bytes:
    """One SSE event as one HTTP/1.1 chunk."""
    data = f"data: {payload}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


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


def speed_factor(spread: float, seed: int | None) -> float:
    """What a server started with `spread` and `seed` multiplies its delays by."""
    factor = random.Random(seed).gauss(1.0, spread) if spread else 1.0
    if factor <= 0:
        raise ValueError(f"spread {spread}: drew a speed factor of {factor:.3f}; a delay cannot be negative")
    return factor


class MockServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # a burst of connections must not hit a full accept queue

    def __init__(self, port: int, ttft_ms: float, itl_ms: float, send_done: bool = True, send_usage: bool = True,
                 spread: float = 0.0, seed: int | None = None, burst: int = 1):
        super().__init__(("127.0.0.1", port), Handler)
        self.burst = burst
        self.factor = speed_factor(spread, seed)
        self.ttft = ttft_ms / 1000.0 * self.factor
        self.itl = itl_ms / 1000.0 * self.factor
        self.send_done = send_done
        self.send_usage = send_usage
        self.served = itertools.count(1)
        self.timings: dict[str, list[float]] = {"ttft_s": [], "itl_s": []}
        self.timings_lock = threading.Lock()
        self.late_s = 0.0  # the most any token went out after its deadline (the machine kept the server waiting)

    def kept(self, received: float, written: list[float]) -> None:
        late = max(at - (received + self.ttft + k * self.itl) for k, at in enumerate(written))
        with self.timings_lock:
            self.late_s = max(self.late_s, late)
            self.timings["ttft_s"].append(written[0] - received)
            self.timings["itl_s"].extend(b - a for a, b in zip(written, written[1:]))

    def take_timings(self) -> dict[str, list[float]]:
        with self.timings_lock:
            taken, self.timings = self.timings, {"ttft_s": [], "itl_s": []}
        return taken


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True
    server: MockServer

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
        pass  # one line per request would cost more than the request

    def do_GET(self) -> None:
        if self.path == "/mock/timings":
            self._respond(200, self.server.take_timings())
        else:
            self._respond(200, {"object": "list", "data": [{"id": "mock"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
        received = time.perf_counter()
        api = "chat" if self.path.endswith("/chat/completions") else "completions"
        prompt = body["messages"][-1]["content"] if api == "chat" else body.get("prompt", "")
        if isinstance(prompt, str) and prompt.startswith("!status="):
            status = int(prompt[len("!status="):].split()[0])
            self._respond(status, {"error": {"message": f"mock status {status}"}})
            return
        self._stream(api, body, received, fail=prompt == "!error")

    def _respond(self, status: int, content: dict) -> None:
        data = json.dumps(content).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, api: str, body: dict, received: float, fail: bool) -> None:
        server = self.server
        index = next(server.served)
        tokens = int(body.get("max_tokens") or 16)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        # (bytes, is a token) not yet written: frames due together go out in one write
        pending = [(_frame(_chunk_json(api, index, None, role=True)), False)] if api == "chat" else []
        written: list[float] = []  # when each token went out
        for k in range(tokens):
            delay = received + server.ttft + k * server.itl - time.perf_counter()
            if delay > 0 and k % server.burst == 0:
                self._write(pending, written)
                time.sleep(delay)
            if fail and k == 1:
                pending.append((_frame('{"error": "mock failure mid-stream"}') + LAST_CHUNK, False))
                break
            pending.append((_frame(_chunk_json(api, index, f" t{k}")), True))
        else:
            if server.send_usage:
                usage = {"prompt_tokens": 4, "completion_tokens": tokens, "total_tokens": tokens + 4}
                pending.append((_frame(_chunk_json(api, index, None, usage=usage)), False))
            if server.send_done:
                pending.append((_frame("[DONE]"), False))
            pending.append((LAST_CHUNK, False))
        self._write(pending, written)
        if written and not fail:
            server.kept(received, written)

    def _write(self, pending: list[tuple[bytes, bool]], written: list[float]) -> None:
        if pending:
            self.wfile.write(b"".join(data for data, _ in pending))
            written.extend(time.perf_counter() for _, token in pending if token)
            pending.clear()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    parser.add_argument("--itl-ms", type=float, default=10.0)
    parser.add_argument("--no-done", action="store_true", help="End streams without [DONE] (like transformers serve).")
    parser.add_argument("--no-usage", action="store_true", help="Send no usage chunk.")
    parser.add_argument("--spread", type=float, default=0.0, help="Standard deviation of the speed factor drawn at start.")
    parser.add_argument("--seed", type=int, default=None, help="Seed of that draw.")
    parser.add_argument("--burst", type=int, default=1, help="Tokens written together in one write.")
    args = parser.parse_args(argv)
    sys.setswitchinterval(0.0002)  # a woken sender gets the GIL quickly
    server = MockServer(args.port, args.ttft_ms, args.itl_ms, send_done=not args.no_done, send_usage=not args.no_usage,
                        spread=args.spread, seed=args.seed, burst=args.burst)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


@contextlib.contextmanager
def mock_server(ttft_ms: float = 50.0, itl_ms: float = 10.0, *flags: str) -> Iterator[str]:
    """Start the mock server in a child process; yield its base URL; stop it after."""
    argv = [sys.executable, __file__, "--ttft-ms", str(ttft_ms), "--itl-ms", str(itl_ms), *flags]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError(f"mock server did not start (exit {process.poll()}): {line!r}")
        yield line.split()[-1]
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def served(ttft_ms: float = 50.0, itl_ms: float = 10.0, spread: float = 0.0, seed: int | None = None,
           burst: int = 1) -> Iterator[MockServer]:
    """Start the server on a thread of this process; yield it (its URL: `url(server)`); stop it after. The
    caller's thread competes with it for the GIL: lower `sys.setswitchinterval` where timing matters."""
    from tests.doubles.threaded import on_thread  # here: run as a script, this file has no `tests` package

    with on_thread(MockServer(0, ttft_ms, itl_ms, spread=spread, seed=seed, burst=burst), poll_interval=0.005) as server:
        yield server  # polled often: these servers live for tens of milliseconds, and shutdown waits for a poll


def url(server: MockServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


if __name__ == "__main__":
    main()
