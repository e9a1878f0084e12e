"""Docker fixtures for packaging tests (imported by tests/conftest.py).

Tests that use them skip only when no Docker daemon answers; a missing debootstrap or
docker-registry is a failure with the command that fixes it (.ci/services.sh installs both).
"""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
import threading
from concurrent.futures import Future
from pathlib import Path

import httpx
import pytest


BACKGROUND_FIXTURES = ("registry", "base_image", "worker_image", "packaged")  # in the order they are made
_started: dict[str, Future] = {}  # fixture name -> its work, started when collection ends


def start_docker_work(items) -> None:
    """Start the registry and build the base and worker images and the packaging tests' image beside the
    tests that come before their first user.

    The builds wait on the network (debootstrap, pip) and on dockerd, so on CI's two cores the suite does
    other tests meanwhile instead of waiting minutes in a fixture; where they use the CPU (pip in the image,
    the push's compression, the smoke test's server) they slow the tests they overlap, less than the wait
    costs (docs/notes/issue-22.md). A fixture waits for its work and raises what it raised; it does the work
    itself only where none was started here."""
    from engineforge.packaging.daemon import connect

    wanted = {name for item in items for name in set(BACKGROUND_FIXTURES) & set(getattr(item, "fixturenames", ()))}
    if "packaged" in wanted:
        wanted.add("registry")  # it pushes there
    if not wanted:
        return
    client, _ = connect()
    if client is None:
        return  # the fixtures skip, naming the reason
    from engineforge.packaging.base_image import ensure_base_image
    from engineforge.packaging.worker_image import ensure_worker_image
    from packaging_helpers import package_tiny

    def scratch(prefix: str) -> Path:
        path = tempfile.mkdtemp(prefix=prefix)
        atexit.register(shutil.rmtree, path, True)
        return Path(path)

    work = {
        "registry": lambda: _start_registry(scratch("engineforge-test-registry-")),
        "base_image": lambda: ensure_base_image(client),  # always first of the images: the others build on it
        "worker_image": lambda: ensure_worker_image(client),
        "packaged": lambda: package_tiny(scratch("engineforge-test-packaged-"), _started["registry"].result()[1]),
    }
    jobs = [name for name in BACKGROUND_FIXTURES if name in wanted or name == "base_image"]
    for name in jobs:
        _started[name] = Future()

    def in_order() -> None:
        for name in jobs:
            try:
                _started[name].set_result(work[name]())
            except BaseException as error:  # the fixture that waits raises it
                _started[name].set_exception(error)

    # A daemon thread: a session that ends early does not wait for a build nobody needs any more.
    threading.Thread(target=in_order, name="docker-work", daemon=True).start()


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

    build = _started.get("base_image")
    return build.result() if build else ensure_base_image(docker_client)


@pytest.fixture(scope="session")
def worker_image(docker_client, base_image) -> str:
    """engineforge's CPU worker image (Docker work pools): built once per dependency set and code,
    then found by its content tags; a code change rebuilds only the code layers."""
    from engineforge.packaging.worker_image import ensure_worker_image

    started = time.perf_counter()
    build = _started.get("worker_image")
    tag = build.result() if build else ensure_worker_image(docker_client)
    print(f"worker image {tag} ready after {time.perf_counter() - started:.1f} s in this fixture")
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
    atexit.register(process.kill)  # dies with the session, even where no fixture stopped it
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
    started = _started.get("registry")
    process, address = started.result() if started else _start_registry(tmp_path_factory.mktemp("registry"))
    yield address
    process.terminate()
    process.wait(timeout=10)


def packaged_in_background():
    """(model dir, PackageResult) of tests/packaging_helpers.py's package run if one was started here, else None."""
    started = _started.get("packaged")
    return started.result() if started else None


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
