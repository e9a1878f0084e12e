"""The CPU worker image: the container a Docker work pool runs engineforge's flow runs in.

Built here with no registry: FROM engineforge's debootstrap base image, engineforge's dependencies
(pyproject.toml's, pinned to the versions this host runs: pins.py) from a host-built wheelhouse,
the code last. Two images, so that a code change never sends the ~1 GB wheelhouse to the daemon again:

    engineforge/worker-deps:cpu-<wheelhouse key>  docker/worker-cpu-deps.Dockerfile, once per dependency set
    engineforge/worker:cpu-<code digest>          docker/worker-cpu.Dockerfile, the code over the deps image

Both are found by their content tags, and a new code image reuses Docker's cached layers below
the code. The TensorRT-LLM variant is docker/worker.Dockerfile (FROM NVIDIA's release image).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import tomllib
from pathlib import Path

from engineforge.errors import StageFailed, UserError
from engineforge.packaging.base_image import DEFAULT_BASE, ensure_base_image
from engineforge.packaging.build import build_image
from engineforge.packaging.pins import image_markers, pinned_closure
from engineforge.packaging.wheelhouse import cache_root, ensure_wheelhouse, copy_tree, wheelhouse_key

CHECKOUT = Path(__file__).resolve().parents[2]
DEPS_DOCKERFILE = "docker/worker-cpu-deps.Dockerfile"
CODE_DOCKERFILE = "docker/worker-cpu.Dockerfile"
DEPS_REPOSITORY = "engineforge/worker-deps"
REPOSITORY = "engineforge/worker"
# What flow runs need of a checkout (prefect.yaml's pull step sets the working directory to it).
CODE = ("pyproject.toml", "README.md", "prefect.yaml", "engineforge", "flows", "tasks", "recipes")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


def requirements(checkout: Path = CHECKOUT) -> list[str]:
    """pyproject.toml's dependencies, and setuptools for the image's editable install of the code."""
    return [*tomllib.loads((checkout / "pyproject.toml").read_text())["project"]["dependencies"], "setuptools>=68"]


def deps_tag(reqs: list[str], base: str, dockerfile: str) -> str:
    """Named after everything in it: the base image, the wheelhouse's requirements, the Dockerfile."""
    digest = hashlib.sha256("\0".join([base, wheelhouse_key(reqs, DEFAULT_BASE.python), dockerfile]).encode())
    return f"{DEPS_REPOSITORY}:cpu-{digest.hexdigest()[:12]}"


def ensure_worker_image(client, checkout: Path = CHECKOUT, log_dir: Path | None = None) -> str:
    """The CPU worker image's tag, building the base, dependency and code images the daemon lacks."""
    base = ensure_base_image(client)
    reqs = pinned_closure(requirements(checkout), image_markers(client, base))
    deps = deps_tag(reqs, base, _dockerfile(checkout / DEPS_DOCKERFILE).read_text())
    log_dir = Path(log_dir or cache_root() / "worker-image")
    if not _has(client, deps):
        wheels = ensure_wheelhouse(reqs, DEFAULT_BASE.python)
        with tempfile.TemporaryDirectory(prefix="worker-deps-", dir=cache_root()) as context:
            (Path(context) / "requirements.txt").write_text("".join(f"{r}\n" for r in reqs))
            copy_tree(wheels, Path(context) / "wheelhouse")
            _build(client, checkout / DEPS_DOCKERFILE, Path(context), deps, {"BASE": base}, log_dir / "deps.log")
    with tempfile.TemporaryDirectory(prefix="worker-code-") as context:
        digest = hashlib.sha256(deps.encode())
        for name in CODE:
            source, target = checkout / name, Path(context) / name
            if source.is_dir():
                shutil.copytree(source, target, ignore=IGNORED)
            else:
                shutil.copy2(source, target)
        for path in sorted(Path(context).rglob("*")):
            if path.is_file():
                digest.update(f"{path.relative_to(context)}\0{path.stat().st_mode:o}\0".encode() + path.read_bytes())
        tag = f"{REPOSITORY}:cpu-{digest.hexdigest()[:12]}"
        if not _has(client, tag):
            _build(client, checkout / CODE_DOCKERFILE, Path(context), tag, {"DEPS": deps}, log_dir / "code.log")
    return tag


def _has(client, tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def _dockerfile(path: Path) -> Path:
    if not path.is_file():
        raise UserError(f"{path}: missing; build the worker image from a clone of this repository")
    return path


def _build(client, dockerfile: Path, context: Path, tag: str, args: dict[str, str], log_path: Path) -> None:
    shutil.copy2(_dockerfile(dockerfile), context / "Dockerfile")
    try:
        build_image(client, context, tag, log_path, buildargs=args)
    except StageFailed as failure:  # build_image speaks for the package stage; this is no stage
        raise UserError(f"worker image: {failure.cause}") from None
