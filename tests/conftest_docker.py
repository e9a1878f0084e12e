"""Docker fixtures for packaging tests (imported by tests/conftest.py).

Tests that use them skip only when no Docker daemon answers; a missing debootstrap or
docker-registry is a failure with the command that fixes it (.ci/services.sh installs both).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import warnings
from pathlib import Path

import httpx
import pytest


@pytest.fixture(scope="session")
def docker_client():
    from engineforge.packaging.daemon import connect

    client, reason = connect()
    if client is None:
        pytest.skip(f"{reason}: start dockerd (.ci/services.sh) to run the packaging integration tests")
    return client


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    """engineforge's own debootstrap base image: built once per machine, then found by its content tag."""
    from engineforge.packaging.base_image import ensure_base_image

    return ensure_base_image(docker_client)


@pytest.fixture(scope="session")
def worker_image(docker_client, base_image) -> str:
    """engineforge's CPU worker image (Docker work pools): built once per dependency set and code,
    then found by its content tags; a code change rebuilds only the code layers."""
    from engineforge.packaging.worker_image import ensure_worker_image

    started = time.perf_counter()
    tag = ensure_worker_image(docker_client)
    print(f"worker image {tag} ready in {time.perf_counter() - started:.1f} s")
    return tag


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_registry(root: Path, htpasswd: Path | None = None):
    """Debian's docker-registry on loopback; returns (process, host:port)."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail("docker-registry not found: apt-get install docker-registry (.ci/services.sh does)")
    port = _free_port()
    auth = f"auth:\n  htpasswd:\n    realm: engineforge-test\n    path: {htpasswd}\n" if htpasswd else ""
    config = root / "config.yml"
    config.write_text(
        f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}"
    )
    log = (root / "registry.log").open("w")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://{address}/v2/", timeout=2).status_code in (200, 401):
                return process, address
        except httpx.HTTPError:
            time.sleep(0.2)
    process.terminate()
    pytest.fail(f"docker-registry did not answer on {address}; see {root / 'registry.log'}")


@pytest.fixture(scope="session")
def registry(tmp_path_factory, docker_client):
    """An anonymous local registry: yields host:port."""
    process, address = _start_registry(tmp_path_factory.mktemp("registry"))
    yield address
    process.terminate()
    process.wait(timeout=10)


REGISTRY_USER = "engineforge-ci"
REGISTRY_PASSWORD = "registry-test-password-7f3a"


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory, docker_client):
    """A local registry that wants REGISTRY_USER / REGISTRY_PASSWORD (htpasswd, bcrypt)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

    root = tmp_path_factory.mktemp("auth-registry")
    htpasswd = root / "htpasswd"
    htpasswd.write_text(f"{REGISTRY_USER}:{crypt.crypt(REGISTRY_PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH))}\n")
    process, address = _start_registry(root, htpasswd)
    yield address
    process.terminate()
    process.wait(timeout=10)
