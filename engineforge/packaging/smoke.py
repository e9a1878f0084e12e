"""Smoke test: run the image, wait for /health, send one completion, stop and remove it.

The container's logs are always written to `logs_path` (the package stage keeps them for MLflow).
"""

from __future__ import annotations

import logging
from pathlib import Path

from engineforge.packaging.spec import MODEL_DIR_IN_IMAGE, SmokeResult

log = logging.getLogger(__name__)
COMPLETION_TIMEOUT_S = 300


class SmokeFailure(Exception):
    """The container did not serve; the message says what it did instead."""


def run_container(client, image: str, port: int, gpu: bool):
    from docker.types import DeviceRequest

    extra = {"device_requests": [DeviceRequest(count=-1, capabilities=[["gpu"]])], "ipc_mode": "host"} if gpu else {}
    container = client.containers.run(
        image, detach=True, ports={f"{port}/tcp": ("127.0.0.1", None)}, labels={"ai.engineforge.smoke-test": "1"}, **extra
    )
    container.reload()
    bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(f"{port}/tcp") or []
    if not bindings:  # an exited container has no bindings: wait_healthy says how it ended
        return container, None
    return container, f"http://127.0.0.1:{bindings[0]['HostPort']}"


def _exit_message(container) -> str | None:
    container.reload()
    if container.status in ("created", "running"):
        return None
    return f"container exited with code {container.attrs['State'].get('ExitCode')} before /health answered"


def wait_healthy(container, base_url: str, timeout_s: float) -> float:
    from engineforge.processes.serving import Unhealthy, wait_healthy

    try:
        return wait_healthy(f"{base_url}/health", timeout_s, lambda: _exit_message(container), request_timeout_s=5)
    except Unhealthy as failure:
        raise SmokeFailure(failure.exited or f"/health did not answer 200 within {timeout_s:.0f} s ({failure.last})") from None


def one_completion(base_url: str, prompt: str) -> str:
    """POST /v1/completions for the served model; return its text if the answer is well-formed."""
    import httpx

    with httpx.Client(base_url=base_url, timeout=COMPLETION_TIMEOUT_S) as http:
        models = http.get("/v1/models")
        listed = models.json().get("data") if models.status_code == 200 else None
        model = listed[0]["id"] if listed else MODEL_DIR_IN_IMAGE
        response = http.post(
            "/v1/completions",
            json={"model": model, "prompt": prompt, "max_tokens": 8, "temperature": 0, "stream": False},
        )
    if response.status_code != 200:
        raise SmokeFailure(f"/v1/completions answered {response.status_code}: {response.text[:200]}")
    body = response.json()
    choices = body.get("choices") if isinstance(body, dict) else None
    if not choices or not isinstance(choices[0].get("text"), str):
        raise SmokeFailure(f"/v1/completions answer has no choices[0].text: {str(body)[:200]}")
    usage = body.get("usage") or {}
    if usage.get("completion_tokens", 1) < 1:
        raise SmokeFailure("/v1/completions generated no tokens")
    return choices[0]["text"]


def smoke_test(client, image: str, port: int, gpu: bool, timeout_s: float, prompt: str, logs_path: Path) -> SmokeResult:
    container, base_url = run_container(client, image, port, gpu)
    health_s = None
    try:
        if base_url is None:
            raise SmokeFailure(_exit_message(container) or f"port {port} was not published")
        health_s = wait_healthy(container, base_url, timeout_s)
        text = one_completion(base_url, prompt)
        details = f"/health after {health_s:.1f} s; /v1/completions answered {text!r}"
        log.info("smoke test passed: %s", details)
        return SmokeResult(passed=True, details=details, health_seconds=health_s, completion=text, logs=logs_path)
    except SmokeFailure as failure:
        return SmokeResult(passed=False, details=str(failure), health_seconds=health_s, logs=logs_path)
    finally:
        _keep_logs_and_remove(container, logs_path)


def _keep_logs_and_remove(container, logs_path: Path) -> None:
    import docker.errors

    logs_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        container.stop(timeout=10)
    except docker.errors.APIError:
        pass
    logs_path.write_bytes(container.logs(stdout=True, stderr=True, timestamps=True))
    container.remove(force=True)
