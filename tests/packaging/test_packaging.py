"""Packaging without a daemon: Dockerfile rendering, inputs, build context, wheelhouse, errors."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from engineforge.errors import StageFailed, UserError
from engineforge.packaging import MODEL_DIR_IN_IMAGE, PackageInputs, package_model
from engineforge.packaging.base_image import (
    DEFAULT_BASE,
    TRTLLM_IMAGE_PYTHON,
    TRTLLM_RELEASE_IMAGE,
    BaseImageSpec,
    image_python,
)
from engineforge.packaging.context import write_context
from engineforge.packaging.dockerfile import render_dockerfile
from engineforge.packaging.push import classify_push_error
from engineforge.packaging.wheelhouse import (
    ensure_wheelhouse,
    host_python,
    pip_argv,
    wheelhouse_key,
)

SERVE_ARGV = ["transformers", "serve", MODEL_DIR_IN_IMAGE, "--host", "0.0.0.0", "--port", "8000", "--device", "cpu"]


def make_inputs(model_dir: Path, **overrides) -> PackageInputs:
    values = dict(
        recipe_name="tiny-llama", runtime="transformers", key="ab" * 32, model_dir=model_dir, serve_argv=SERVE_ARGV,
        python_requirements=["transformers[serving]==5.24.0", "torch==2.13.0"],
        labels={"ai.engineforge.lock-sha256": "cd" * 32, "org.opencontainers.image.revision": "0123abc"},
    )
    values.update(overrides)
    return PackageInputs(**values)


@pytest.fixture
def model_dir(tmp_path) -> Path:
    """A stand-in model directory with the junk real ones carry (hub cache metadata, a .env)."""
    root = tmp_path / "model"
    (root / ".cache" / "huggingface").mkdir(parents=True)
    (root / "config.json").write_text("{}")
    weights = root / "model.safetensors"
    weights.write_bytes(b"\0" * 64)
    weights.chmod(0o600)  # safetensors files are often written owner-only
    (root / ".env").write_text("HF_TOKEN=hf_not_for_images\n")
    (root / ".cache" / "huggingface" / "download.metadata").write_text("etag")
    return root


def instructions(dockerfile: str) -> list[str]:
    """Dockerfile instructions with continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    return [line for line in joined.splitlines() if line.strip() and not line.startswith("#")]


def final_stage(dockerfile: str) -> list[str]:
    lines = instructions(dockerfile)
    last_from = max(i for i, line in enumerate(lines) if line.startswith("FROM "))
    return lines[last_from:]


def test_dockerfile_puts_dependencies_before_the_model_and_the_model_last(model_dir):
    lines = final_stage(render_dockerfile(make_inputs(model_dir), DEFAULT_BASE.tag))
    copies = [line for line in lines if line.startswith("COPY")]
    assert copies[0].startswith("COPY --from=deps /opt/engineforge/venv")
    assert copies[-1] == f"COPY model/ {MODEL_DIR_IN_IMAGE}/"
    # Only metadata instructions follow the model layer: a changed model rebuilds one layer.
    after_model = lines[lines.index(copies[-1]) + 1:]
    assert {line.split()[0] for line in after_model} <= {"USER", "WORKDIR", "EXPOSE", "HEALTHCHECK", "LABEL", "ENTRYPOINT"}


def test_dependencies_install_from_the_wheelhouse_without_an_index(model_dir):
    text = render_dockerfile(make_inputs(model_dir), DEFAULT_BASE.tag)
    pip = next(line for line in instructions(text) if "pip" in line and line.startswith("RUN"))
    argv = json.loads(pip[len("RUN "):])
    assert "--no-index" in argv and "--find-links" in argv
    assert instructions(text)[0] == f"FROM {DEFAULT_BASE.tag} AS deps"


def test_image_runs_as_a_non_root_user_with_healthcheck_and_exec_entrypoint(model_dir):
    lines = final_stage(render_dockerfile(make_inputs(model_dir, port=8123), DEFAULT_BASE.tag))
    user = next(line for line in lines if line.startswith("USER "))
    assert user.split()[1].split(":")[0] not in ("root", "0")
    health = next(line for line in lines if line.startswith("HEALTHCHECK"))
    assert "http://127.0.0.1:8123/health" in health
    entry = next(line for line in lines if line.startswith("ENTRYPOINT "))
    assert json.loads(entry[len("ENTRYPOINT "):]) == SERVE_ARGV
    assert "EXPOSE 8123" in lines


def test_labels_carry_oci_and_engineforge_keys_and_are_quoted(model_dir):
    labels = {"ai.engineforge.note": 'say "hi" for $HOME \\ now'}
    text = render_dockerfile(make_inputs(model_dir, labels=labels), DEFAULT_BASE.tag)
    label_line = next(line for line in instructions(text) if line.startswith("LABEL "))
    for key in ("org.opencontainers.image.source", "org.opencontainers.image.revision", "org.opencontainers.image.created",
                "ai.engineforge.recipe", "ai.engineforge.runtime", "ai.engineforge.stage-key"):
        assert f"{key}=" in label_line
    assert r'ai.engineforge.note="say \"hi\" for \$HOME \\ now"' in label_line


def test_caller_labels_override_defaults(model_dir):
    text = render_dockerfile(make_inputs(model_dir), DEFAULT_BASE.tag)
    assert 'org.opencontainers.image.revision="0123abc"' in text
    assert 'org.opencontainers.image.revision="unknown"' not in text


def test_created_label_follows_source_date_epoch(model_dir, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    text = render_dockerfile(make_inputs(model_dir), DEFAULT_BASE.tag)
    assert 'org.opencontainers.image.created="2023-11-14T22:13:20Z"' in text


def test_the_pinned_release_image_is_labelled_with_its_version(model_dir):
    base = TRTLLM_RELEASE_IMAGE
    assert re.fullmatch(r"nvcr\.io/nvidia/tensorrt-llm/release:\d+\.\d+\.\d+", base)
    inputs = make_inputs(model_dir, runtime="trtllm", python_requirements=[], serve_argv=["trtllm-serve", MODEL_DIR_IN_IMAGE])
    text = render_dockerfile(inputs, base)
    assert instructions(text)[0] == f"FROM {base}"  # no dependency stage without requirements
    assert f'ai.engineforge.tensorrt-llm-version="{base.rsplit(":", 1)[1]}"' in text
    assert (image_python(base), image_python(DEFAULT_BASE.tag)) == (TRTLLM_IMAGE_PYTHON, DEFAULT_BASE.python)


@pytest.mark.parametrize(
    "field, value",
    [
        ("base_image", "debian; rm -rf /"),
        ("base_image", "debian:12@sha256:short"),
        ("image_repo", "Engineforge/Tiny"),
        ("registry", "https://127.0.0.1:5000"),
        ("key", "not-hex"),
        ("recipe_name", "Tiny Llama"),
    ],
)
def test_inputs_reject_references_that_are_not_plain_names(model_dir, field, value):
    with pytest.raises(ValidationError, match=field if field != "recipe_name" else "recipe_name"):
        make_inputs(model_dir, **{field: value})


def test_inputs_reject_multiline_labels_and_argv(model_dir):
    with pytest.raises(ValidationError, match="printable"):
        make_inputs(model_dir, labels={"ai.engineforge.x": "a\nRUN curl evil"})
    with pytest.raises(ValidationError, match="printable"):
        make_inputs(model_dir, serve_argv=["serve", "x\ny"])


def test_image_tag_is_repository_recipe_and_short_key(model_dir):
    assert make_inputs(model_dir).image_tag == "engineforge/tiny-llama:tiny-llama-abababababab"
    assert make_inputs(model_dir, image_repo="team/llm").image_tag == "team/llm:tiny-llama-abababababab"


def test_base_image_tag_is_a_hash_of_its_spec():
    assert BaseImageSpec().tag == DEFAULT_BASE.tag
    changed = BaseImageSpec(packages=("python3", "python3-venv", "ca-certificates", "curl"))
    assert changed.tag != DEFAULT_BASE.tag and changed.tag.startswith("engineforge/base-python:bookworm-")


def test_context_keeps_credentials_out_and_makes_the_model_readable(model_dir, tmp_path):
    from docker.utils.build import exclude_paths

    context = tmp_path / "context"
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "pkg-1.0-py3-none-any.whl").write_bytes(b"PK")
    write_context(make_inputs(model_dir), DEFAULT_BASE.tag, context, wheels)
    # What the Docker SDK will send to the daemon, decided by our .dockerignore:
    sent = set(exclude_paths(str(context), (context / ".dockerignore").read_text().splitlines()))
    assert {"Dockerfile", "requirements.txt", "model/config.json", "model/model.safetensors",
            "wheelhouse/pkg-1.0-py3-none-any.whl"} <= sent
    assert not [path for path in sent if ".env" in path or ".cache" in path]
    copied = context / "model" / "model.safetensors"
    assert copied.stat().st_mode & stat.S_IROTH
    assert not (model_dir / "model.safetensors").stat().st_mode & stat.S_IROTH  # source untouched
    assert (context / "model" / "config.json").stat().st_ino != (model_dir / "config.json").stat().st_ino  # a copy, no shared inode


def test_write_context_refuses_an_empty_model_dir(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="empty"):
        write_context(make_inputs(empty), DEFAULT_BASE.tag, tmp_path / "context", None)


def test_wheelhouse_key_follows_requirements_and_target_python():
    key = wheelhouse_key(["b==1", "a==2"], "3.11")
    assert key == wheelhouse_key(["a==2", "b==1"], "3.11")
    assert key != wheelhouse_key(["a==2", "b==2"], "3.11") != wheelhouse_key(["a==2", "b==1"], "3.12")


def test_wheelhouse_for_another_python_downloads_binary_wheels_only(tmp_path):
    other = pip_argv(tmp_path / "r.txt", tmp_path, "3.12" if host_python() != "3.12" else "3.10")
    assert "download" in other and "--only-binary=:all:" in other and "--python-version" in other
    assert "wheel" in pip_argv(tmp_path / "r.txt", tmp_path, host_python())


def test_wheelhouse_failure_is_a_user_error_naming_the_requirements(tmp_path):
    with pytest.raises(UserError, match=r"python_requirements .*could not build the wheelhouse"):
        ensure_wheelhouse(["transformers===["], host_python(), root=tmp_path)
    assert list(tmp_path.iterdir()) == []  # no half-built wheelhouse left behind


def test_without_a_daemon_the_context_is_rendered_and_the_stage_says_skipped(model_dir, tmp_path, monkeypatch):
    address = f"unix://{tmp_path / 'nobody.sock'}"
    monkeypatch.setenv("DOCKER_HOST", address)
    result = package_model(make_inputs(model_dir), tmp_path / "out")
    assert result.status == "skipped"
    assert result.reason.startswith(f"no Docker daemon at {address}")
    assert result.dockerfile.is_file() and "FROM" in result.dockerfile.read_text()
    assert (result.context_dir / "model" / "config.json").is_file()
    assert json.loads((tmp_path / "out" / "package.json").read_text())["status"] == "skipped"


def test_without_a_daemon_a_required_build_is_a_user_error(model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'nobody.sock'}")
    with pytest.raises(UserError, match="no Docker daemon at .*start dockerd"):
        package_model(make_inputs(model_dir, require_daemon=True), tmp_path / "out")


@pytest.mark.parametrize(
    "message, kind, words",
    [
        ("unauthorized: authentication required", UserError, "refused the credentials"),
        ("no basic auth credentials", UserError, "asks for credentials"),
        ('Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused', UserError, "not reachable"),
        ("http: server gave HTTP response to HTTPS client", UserError, "insecure-registries"),
        ("blob upload unknown", StageFailed, "push to 127.0.0.1:5000 failed"),
    ],
)
def test_push_errors_name_the_cause_and_the_fix(message, kind, words):
    error = classify_push_error("127.0.0.1:5000", message)
    assert type(error) is kind and words in str(error) and "\n" not in str(error)
    if "credentials" in words:
        assert "ENGINEFORGE_REGISTRY_USER" in str(error) and "ENGINEFORGE_REGISTRY_PASSWORD" in str(error)


def test_context_fingerprint_follows_model_files_but_not_regenerated_files(model_dir, tmp_path):
    from engineforge.packaging.context import context_fingerprint

    def fingerprint(name: str) -> str:
        write_context(make_inputs(model_dir, labels={"org.opencontainers.image.created": "2026-01-01T00:00:00Z"}),
                      DEFAULT_BASE.tag, tmp_path / name, None)
        return context_fingerprint(tmp_path / name)

    first = fingerprint("a")
    assert fingerprint("b") == first  # rewritten Dockerfile/.dockerignore with the same bytes
    config = model_dir / "config.json"
    os.utime(config, ns=(config.stat().st_atime_ns, config.stat().st_mtime_ns + 10**9))
    assert fingerprint("c") != first


def test_a_packaging_failure_survives_pickling_as_prefect_stores_it(tmp_path):
    import pickle

    from engineforge.packaging.package import PackagingFailed
    from engineforge.packaging.spec import PackageResult

    result = PackageResult(status="built", reason="smoke", dockerfile=tmp_path / "Dockerfile",
                           context_dir=tmp_path, base_image="b", image_tag="engineforge/x:y")
    failure = pickle.loads(pickle.dumps(PackagingFailed("smoke test of engineforge/x:y failed", result)))
    assert str(failure) == "stage package failed: smoke test of engineforge/x:y failed"
    assert failure.result == result
