"""engineforge's CPU worker image (engineforge/packaging/worker_image.py) on the local dockerd: found by
its content tags once built, a code change rebuilds only the code layers, and what runs in it is the
checkout's engineforge. Skips only where no Docker daemon answers."""

from __future__ import annotations

import shutil
import time

import pytest

from engineforge.packaging.worker_image import CHECKOUT, CODE, CODE_DOCKERFILE, DEPS_DOCKERFILE, ensure_worker_image

# The first test of a machine to need the image builds it cold (16 min on the 2-core VM: BENCHMARKS.md).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(2700)]


def test_a_built_image_is_found_by_its_tag_and_a_code_change_reuses_the_dependency_layers(docker_client, worker_image, tmp_path):
    started = time.perf_counter()
    assert ensure_worker_image(docker_client) == worker_image
    print(f"warm: {time.perf_counter() - started:.1f} s")

    checkout = tmp_path / "checkout"
    for name in (*CODE, CODE_DOCKERFILE, DEPS_DOCKERFILE):
        source, target = CHECKOUT / name, checkout / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
    flows_init = checkout / "flows" / "__init__.py"
    flows_init.write_text(flows_init.read_text() + "# changed by test_worker_image\n")
    started = time.perf_counter()
    changed = ensure_worker_image(docker_client, checkout, log_dir=tmp_path / "logs")
    try:
        print(f"code change: {time.perf_counter() - started:.1f} s")
        assert changed != worker_image
        log = (tmp_path / "logs" / "code.log").read_text()
        editable = log.index("--editable")  # the install step of the package's metadata, before the code
        assert "Using cache" in log[editable:log.index("Step", editable)], log
        assert not (tmp_path / "logs" / "deps.log").exists()  # the dependency image was found by its tag
        shown = docker_client.containers.run(changed, ["tail", "-n1", "/opt/engineforge/flows/__init__.py"], remove=True)
        assert shown.decode().strip() == "# changed by test_worker_image"
    finally:
        docker_client.images.remove(changed)


def test_the_image_runs_this_checkouts_engineforge_and_its_owners_are_not_judged_by_the_host(docker_client, worker_image):
    from engineforge.processes.owner import Owner
    from engineforge.versions import package_version

    script = ("import importlib.metadata, engineforge, prefect; from engineforge.processes.owner import Owner; "
              "print(importlib.metadata.version('engineforge'), engineforge.__file__, prefect.__version__, Owner.current().token())")
    output = docker_client.containers.run(worker_image, ["python", "-c", script], network_mode="host", remove=True, working_dir="/tmp")
    version, module, prefect_version, token = output.decode().split()
    assert (version, prefect_version) == (package_version("engineforge"), package_version("prefect"))  # both enter stage keys
    assert module == "/opt/engineforge/engineforge/__init__.py"
    owner = Owner.parse(token)
    assert owner.host == Owner.current().host  # the host network's name, yet its pids are not ours:
    assert not owner.is_dead()  # the host never closes a container's live run (nor sweeps its temporary files)
