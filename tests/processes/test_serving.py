"""serving.wait_healthy against a real loopback HTTP server (http.server), and log_tail."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engineforge.processes.serving import Unhealthy, log_tail, wait_healthy


class _Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.calls += 1
        self.send_response(200 if self.server.calls >= self.server.healthy_after else 503)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    httpd.calls, httpd.healthy_after = 0, 3
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def url(httpd) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}/health"


def test_waits_through_non_200_answers_until_healthy(server):
    seconds = wait_healthy(url(server), timeout_s=10, interval_s=0.01)
    assert server.calls == 3 and 0 <= seconds < 10


def test_times_out_naming_the_last_answer(server):
    server.healthy_after = 10**6
    with pytest.raises(Unhealthy) as failure:
        wait_healthy(url(server), timeout_s=0.3, interval_s=0.01)
    assert (failure.value.exited, failure.value.last) == (None, "answered 503")


def test_stops_at_once_when_the_server_is_gone(server):
    with pytest.raises(Unhealthy) as failure:
        wait_healthy(url(server), timeout_s=10, exited=lambda: "server exited with code 1")
    assert failure.value.exited == "server exited with code 1" and server.calls == 0


def test_log_tail_is_one_line_of_the_last_lines(tmp_path):
    log = tmp_path / "server.log"
    assert log_tail(log) == "(no log)"
    log.write_text("")
    assert log_tail(log) == "(empty log)"
    log.write_text("a\nb\nc\nd\n")
    assert log_tail(log) == "b | c | d"
