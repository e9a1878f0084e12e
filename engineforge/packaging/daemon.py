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
        return None, f"no Docker daemon at {address} ({_reason(error)})"
    return client, None


def _reason(error: BaseException, depth: int = 0) -> str:
    """The words of the innermost OS error ("No such file or directory", "Connection refused"):
    the SDK's own message nests Python exception tuples."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    for inner in (*error.args, error.__cause__, error.__context__) if depth < 6 else ():
        if isinstance(inner, BaseException):
            found = _reason(inner, depth + 1)
            if found:
                return found
    if depth:
        return ""
    text = str(error).split(": (")[0].splitlines()  # no OS error inside: the SDK's words, without tuples
    return text[0][:160] if text else type(error).__name__
