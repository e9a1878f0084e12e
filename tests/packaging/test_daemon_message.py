"""Without a Docker daemon the package stage says so in one clean sentence: the address and the
operating system's reason, no Python exception tuple (the real Docker SDK, real sockets)."""

import socket

from engineforge.packaging.daemon import connect


def test_missing_socket(monkeypatch, tmp_path):
    address = f"unix://{tmp_path / 'docker.sock'}"
    monkeypatch.setenv("DOCKER_HOST", address)
    client, reason = connect()
    assert client is None
    assert reason == f"no Docker daemon at {address} (No such file or directory)"


def test_socket_nobody_listens_on(monkeypatch, tmp_path):
    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as bound:  # the file stays, the listener is gone
        bound.bind(str(path))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    client, reason = connect()
    assert client is None
    assert reason == f"no Docker daemon at unix://{path} (Connection refused)"
