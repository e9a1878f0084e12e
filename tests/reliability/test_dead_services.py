"""Services that do not answer: a tracking server refusing connections or accepting and never replying
is reported in seconds, in one line naming the variable that sets it. Real sockets, no mocks."""

from __future__ import annotations

import socket
import time

import pytest

from engineforge.tracking import mlflow_runs
from engineforge.errors import UserError
from engineforge.recipe.file import parse_recipe
from engineforge.processes.serving import free_port

RECIPE = "name: probe-demo\nmodel:\n  source: synthetic:tiny-llama\nruntime: transformers\n"


@pytest.fixture
def silent_server():
    """A TCP listener that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_an_unreachable_mlflow_server_fails_the_run_start_in_seconds_in_one_line(kind, silent_server, monkeypatch):
    uri = silent_server if kind == "silent" else f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    started = time.perf_counter()
    with pytest.raises(UserError) as raised:
        mlflow_runs.start_run(parse_recipe(RECIPE), RECIPE)
    print(f"MLflow {kind}: detected in {time.perf_counter() - started:.2f} s")
    message = str(raised.value)
    assert "\n" not in message and uri in message and "MLFLOW_TRACKING_URI" in message
