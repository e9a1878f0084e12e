"""Packaging for real: the tiny model's image built from engineforge's own base image, smoke-tested,
pushed to a local registry and pulled back by digest (skipped only when no Docker daemon answers)."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import httpx
import pytest
from conftest_docker import REGISTRY_PASSWORD, REGISTRY_USER, packaged_in_background
from packaging_helpers import KEY, LABELS, SECRET, inputs_for, package_tiny

from engineforge.errors import UserError
from engineforge.packaging import PackageResult, PackagingFailed, package_model
from engineforge.packaging.audit import find_secrets, image_labels, image_user
from engineforge.packaging.push import push_image
from engineforge.recipe.schema import SyntheticModel

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tiny_package(tmp_path_factory, docker_client, base_image, registry) -> tuple[Path, PackageResult]:
    """One real package run (tests/packaging_helpers.py), its secret in the build's environment too: the one
    started beside the earlier tests (tests/conftest_docker.py), or one run here."""
    return packaged_in_background() or package_tiny(tmp_path_factory.mktemp("tiny-package"), registry)


@pytest.fixture(scope="module")
def model_dir(tiny_package) -> Path:
    """The tiny model plus the junk real model directories carry, holding the secret."""
    return tiny_package[0]


@pytest.fixture(scope="module")
def packaged(tiny_package) -> PackageResult:
    return tiny_package[1]


def test_tiny_image_is_built_smoke_tested_and_pushed(packaged, registry):
    assert packaged.status == "built" and packaged.image_id.startswith("sha256:")
    assert packaged.smoke.passed, packaged.smoke.details
    assert isinstance(packaged.smoke.completion, str) and packaged.smoke.logs.is_file()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", packaged.digest)
    assert packaged.pushed_ref == f"{registry}/engineforge/tiny-llama@{packaged.digest}"


def test_pushed_image_pulls_back_by_digest(packaged, docker_client, registry):
    repository = packaged.pushed_ref.split("@")[0]
    manifest = httpx.get(
        f"http://{registry}/v2/{repository.split('/', 1)[1]}/manifests/{packaged.digest}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    assert manifest.status_code == 200 and manifest.headers["Docker-Content-Digest"] == packaged.digest
    docker_client.images.remove(f"{repository}:{packaged.image_tag.rsplit(':', 1)[1]}")
    pulled = docker_client.images.pull(packaged.pushed_ref)
    assert pulled.id == packaged.image_id
    assert packaged.pushed_ref in pulled.attrs["RepoDigests"]


def test_image_runs_as_non_root_and_reads_but_cannot_change_model_and_dependencies(packaged, docker_client):
    assert image_user(docker_client, packaged.image_id) == "engineforge:engineforge"
    probe = (
        "import os; print(os.getuid(), os.access('/opt/engineforge/model/model.safetensors', os.R_OK),"
        " os.access('/opt/engineforge/model', os.W_OK), os.access('/opt/engineforge/venv/bin', os.W_OK))"
    )
    out = docker_client.containers.run(packaged.image_id, ["-c", probe], entrypoint="python3", remove=True)
    assert out.decode().split() == ["10001", "True", "False", "False"]


def test_image_carries_oci_and_engineforge_labels_and_a_healthcheck(packaged, docker_client, base_image):
    labels = image_labels(docker_client, packaged.image_id)
    assert {k: labels[k] for k in LABELS} == LABELS  # quoting survived the Dockerfile
    assert labels["ai.engineforge.recipe"] == "tiny-llama" and labels["ai.engineforge.runtime"] == "transformers"
    assert labels["org.opencontainers.image.base.name"] == base_image
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", labels["org.opencontainers.image.created"])
    health = docker_client.images.get(packaged.image_id).attrs["Config"]["Healthcheck"]["Test"]
    assert health[0] == "CMD" and "/health" in health[-1]


def test_no_secret_in_any_layer_history_or_log(packaged, docker_client):
    assert find_secrets(docker_client, packaged.image_id, [SECRET]) == []
    for log in (packaged.build_log, packaged.smoke.logs):
        assert SECRET not in log.read_text(errors="replace")


def test_secret_scan_finds_a_planted_secret(docker_client, base_image):
    """The scan above would be vacuous if it could not see a secret that is there."""
    planted = "hf_" + secrets.token_hex(16)
    container = docker_client.containers.run(
        base_image, ["python3", "-c", f"open('/root/token','w').write('{planted}')"], detach=True
    )
    container.wait()
    image = container.commit()
    container.remove()
    try:
        found = find_secrets(docker_client, image.id, [planted])
        assert any(place.endswith("/root/token") for place in found)
        assert any(place.startswith("history") for place in found)  # the commit's command line holds it too
    finally:
        docker_client.images.remove(image.id, force=True)


def test_unchanged_inputs_reuse_the_image_and_a_touched_file_rebuilds_from_cache(packaged, docker_client, tmp_path, model_dir):
    again = package_model(inputs_for(model_dir, KEY, smoke_test=False), tmp_path / "again")
    assert again.reused and again.image_id == packaged.image_id

    config = model_dir / "config.json"
    os.utime(config, ns=(config.stat().st_atime_ns, config.stat().st_mtime_ns + 10**9))  # same bytes, new mtime
    rebuilt = package_model(inputs_for(model_dir, KEY, smoke_test=False), tmp_path / "rebuilt")
    assert not rebuilt.reused
    assert "Using cache" in rebuilt.build_log.read_text()
    assert layers(docker_client, rebuilt.image_id) == layers(docker_client, packaged.image_id)


def test_changed_model_reuses_the_dependency_layers(packaged, docker_client, tmp_path):
    from engineforge.sources.synthetic import write_synthetic_model

    changed_model = write_synthetic_model(SyntheticModel(seed=1), tmp_path / "changed-model")
    changed = package_model(inputs_for(changed_model, "e8" * 32, smoke_test=False), tmp_path / "changed")
    old, new = layers(docker_client, packaged.image_id), layers(docker_client, changed.image_id)
    assert len(old) == len(new) and old[:-1] == new[:-1] and old[-1] != new[-1]  # only the model layer differs


def layers(client, image_id: str) -> list[str]:
    return client.images.get(image_id).attrs["RootFS"]["Layers"]


def test_failed_smoke_test_keeps_logs_and_never_pushes(docker_client, base_image, registry, tiny_model_dir, tmp_path):
    canary = "engineforge-smoke-canary"
    inputs = inputs_for(
        tiny_model_dir, "f0" * 32, image_repo="engineforge/smoke-fails", registry=registry, python_requirements=[],
        base_image=base_image, serve_argv=["python3", "-c", f"print('{canary}'); raise SystemExit(3)"],
    )
    with pytest.raises(PackagingFailed, match="smoke test of .* failed: container exited with code 3.*not pushed") as failure:
        package_model(inputs, tmp_path / "out")
    assert canary in failure.value.result.smoke.logs.read_text()
    assert failure.value.result.pushed_ref is None
    assert httpx.get(f"http://{registry}/v2/engineforge/smoke-fails/tags/list").status_code == 404


def test_missing_base_image_names_the_image_and_how_to_get_it(docker_client, tiny_model_dir, tmp_path):
    inputs = inputs_for(tiny_model_dir, "f1" * 32, base_image="engineforge/no-such-base:1", python_requirements=[])
    with pytest.raises(UserError, match=r"base image engineforge/no-such-base:1 is not available .*docker load"):
        package_model(inputs, tmp_path / "out")


def test_registry_refusing_credentials_is_a_user_error(docker_client, base_image, auth_registry, monkeypatch):
    monkeypatch.delenv("ENGINEFORGE_REGISTRY_USER", raising=False)
    monkeypatch.delenv("ENGINEFORGE_REGISTRY_PASSWORD", raising=False)
    with pytest.raises(UserError, match="asks for credentials.*ENGINEFORGE_REGISTRY_USER"):
        push_image(docker_client, base_image, auth_registry, "engineforge/base-check", "anonymous")
    monkeypatch.setenv("ENGINEFORGE_REGISTRY_USER", REGISTRY_USER)
    monkeypatch.setenv("ENGINEFORGE_REGISTRY_PASSWORD", "wrong-" + REGISTRY_PASSWORD)
    with pytest.raises(UserError, match="refused the credentials.*ENGINEFORGE_REGISTRY_PASSWORD"):
        push_image(docker_client, base_image, auth_registry, "engineforge/base-check", "wrong")
    monkeypatch.setenv("ENGINEFORGE_REGISTRY_PASSWORD", REGISTRY_PASSWORD)
    ref, digest = push_image(docker_client, base_image, auth_registry, "engineforge/base-check", "right")
    assert ref == f"{auth_registry}/engineforge/base-check@{digest}"
