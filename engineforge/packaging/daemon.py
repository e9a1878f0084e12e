"""The Docker daemon through the Docker SDK: connect, or say exactly why not."""

from __future__ import annotations

import os

DEFAULT_SOCKET = "unix:///var/run/docker.sock"


def daemon_address() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def connect(timeout_s: int = 300):
    """(client, None) when a daemon answers a ping, else (None, "no Docker daemon at ADDRESS (why)").

    `timeout_s` bounds each later read (builds stream without a limit)."""
    import docker.errors
    import requests.exceptions

    import docker

    address = daemon_address()
    try:
        client = docker.from_env(timeout=10)  # a hung daemon fails the ping quickly
        client.ping()
        client.api.timeout = timeout_s
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        return None, f"no Docker daemon at {address} ({detail[:160]})"
    return client, None
