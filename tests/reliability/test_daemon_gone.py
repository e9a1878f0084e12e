"""A Docker daemon that stops answering between the package key and the build fails the stage; it
never leaves a "skipped" entry under a key that says a daemon answered (that entry would be reused,
as "skipped", once the daemon is back).

The daemon here is a ping-only double on a unix socket (it answers the SDK's GET /version and
/_ping, nothing else): the real daemon serves the other tests and is not ours to stop.
"""

from __future__ import annotations

import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler

import pytest

from engineforge.errors import UserError
from engineforge.recipe.file import parse_recipe
from engineforge.runtimes import get_runtime
from engineforge.stages.build import build, build_key
from engineforge.stages.context import RunContext
from engineforge.tracking.mlflow_runs import TrackedRun
from engineforge.stages.download import download
from engineforge.stages.package import package, package_key
from tests.conftest import recipe_text


class _Ping(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"ApiVersion": "1.47"}).encode() if self.path == "/version" else b"OK"
        self.send_response(200)
        self.send_header("Content-Type", "application/json" if self.path == "/version" else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self) -> str:  # a unix socket has no peer address
        return "unix"

    def log_message(self, *args) -> None:
        pass


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def test_a_daemon_gone_after_the_key_fails_the_stage_and_keeps_nothing(tmp_path, monkeypatch):
    socket_path = tmp_path / "docker.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket_path}")
    recipe = parse_recipe(recipe_text("synthetic:tiny-llama", name="daemon-gone",
                                      package="package:\n  enabled: true\n"))
    runtime = get_runtime(recipe.runtime)
    ctx = RunContext(runtime=runtime, store_root=str(tmp_path / "store"), mlflow_run=TrackedRun("", ""))
    model = download(recipe, ctx)
    built = build(recipe, model, ctx, build_key(recipe, model, runtime))

    server = _UnixHTTPServer(str(socket_path), _Ping)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    key = package_key(recipe, built, runtime)  # the daemon answers now
    server.shutdown()
    server.server_close()
    socket_path.unlink()  # and is gone when the stage runs

    with pytest.raises(UserError, match="no Docker daemon at unix://.*docker.sock"):
        package(recipe, built, model, "0" * 64, ctx, key)
    assert not ctx.store.intact("package", key)
    # Without a daemon from the start, the key says so and the stage records its skip.
    absent = package_key(recipe, built, runtime)
    assert absent != key
    assert package(recipe, built, model, "0" * 64, ctx, absent).status == "skipped"
