"""Base images: which one a runtime builds on, and the one engineforge builds itself.

The `transformers` runtime builds on `engineforge/base-python`, a minimal Debian (debootstrap
minbase, bookworm: Python 3.11 like the host that builds the wheelhouse) with python3, python3-venv
and ca-certificates, imported with `docker import`. It needs no public registry, so it works
offline and air-gapped. Its tag is a hash of what goes into it (`BaseImageSpec`), so it is built
once per machine and a changed spec gets a new tag rather than silently replacing the old one.

TensorRT-LLM runtimes build on NVIDIA's release image of the recipe's `trtllm.version`
(engineforge/recipe/trtllm_section.py): an engine only loads in the TensorRT-LLM version that built it, so the
image is chosen by that version and the version recorded in the image labels.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from engineforge.errors import UserError
from engineforge.recipe.trtllm_section import DEFAULT_VERSION, RELEASE_IMAGES
from engineforge.settings import settings

log = logging.getLogger(__name__)

# NGC release image of the default TensorRT-LLM version (the worker image's default, docker/worker.Dockerfile).
TRTLLM_VERSION = DEFAULT_VERSION
TRTLLM_IMAGES = "nvcr.io/nvidia/tensorrt-llm"  # release and devel images, same Python (3.12 inside)
TRTLLM_RELEASE_REPOSITORY = RELEASE_IMAGES
TRTLLM_IMAGE_PYTHON = "3.12"

BASE_REPOSITORY = "engineforge/base-python"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
BUILD_HINT = "python -m engineforge.packaging base-image"


class BaseImageSpec(BaseModel):
    """What goes into the engineforge base image; its hash is the image tag."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    suite: str = "bookworm"
    variant: str = "minbase"
    packages: tuple[str, ...] = ("python3", "python3-venv", "ca-certificates")
    python: str = "3.11"
    # Bump when the steps in build_base_image change what ends up in the image.
    recipe_version: int = 1

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()

    @property
    def tag(self) -> str:
        return f"{BASE_REPOSITORY}:{self.suite}-{self.content_hash[:12]}"


DEFAULT_BASE = BaseImageSpec()


def trtllm_release_image(version: str) -> str:
    return f"{TRTLLM_RELEASE_REPOSITORY}:{version}"


TRTLLM_RELEASE_IMAGE = trtllm_release_image(TRTLLM_VERSION)


def image_python(base_image: str) -> str:
    """The Python version inside a base image (the wheelhouse must match it): NVIDIA's TensorRT-LLM
    images carry their own, any other base is taken to be like engineforge's."""
    if base_image.startswith(f"{TRTLLM_IMAGES}/"):
        return TRTLLM_IMAGE_PYTHON
    return DEFAULT_BASE.python


def trtllm_version_of(base_image: str) -> str | None:
    """The TensorRT-LLM version a release image carries, read from its tag."""
    prefix = f"{TRTLLM_RELEASE_REPOSITORY}:"
    if base_image.startswith(prefix):
        return base_image[len(prefix):].split("@", 1)[0]
    return None


def missing_base_hint(base_image: str) -> str:
    if base_image.startswith(f"{BASE_REPOSITORY}:"):
        return f"build it with `{BUILD_HINT}`"
    return f"pull it from a reachable registry (`docker pull {base_image}`) or load it (`docker load -i FILE.tar`), or set package.base to an image the daemon has"


def ensure_base_image(client, spec: BaseImageSpec = DEFAULT_BASE, workdir: Path | None = None) -> str:
    """Return the engineforge base image tag, building it first when the daemon lacks it."""
    import docker.errors

    try:
        client.images.get(spec.tag)
        return spec.tag
    except docker.errors.ImageNotFound:
        pass
    build_base_image(client, spec, workdir)
    return spec.tag


def build_base_image(client, spec: BaseImageSpec = DEFAULT_BASE, workdir: Path | None = None) -> str:
    """debootstrap a root filesystem, then `docker import` it under the content-hash tag."""
    if shutil.which("debootstrap") is None:
        raise UserError(f"debootstrap not found: install it (apt-get install debootstrap) to build {spec.tag}, or load that image with `docker load`")
    if os.geteuid() != 0:
        raise UserError(f"building {spec.tag} with debootstrap needs root: run `sudo {BUILD_HINT}`")
    mirror = settings().DEBIAN_MIRROR
    with tempfile.TemporaryDirectory(prefix="engineforge-base-", dir=workdir) as tmp:
        root = Path(tmp) / "rootfs"
        argv = [
            "debootstrap", f"--variant={spec.variant}", f"--include={','.join(spec.packages)}",
            spec.suite, str(root), mirror,
        ]
        log.info("building base image %s: %s", spec.tag, " ".join(argv))
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["no output"]
            raise UserError(f"debootstrap {spec.suite} from {mirror} failed: {tail[0]}; set ENGINEFORGE_DEBIAN_MIRROR to a reachable mirror")
        _trim(root)
        archive = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(archive), "."], check=True)
        repository, tag = spec.tag.split(":", 1)
        changes = [
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV LANG=C.UTF-8",
            'CMD ["python3"]',
            f"LABEL ai.engineforge.base-spec-sha256={spec.content_hash}",
        ]
        client.api.import_image_from_file(str(archive), repository=repository, tag=tag, changes=changes)
    log.info("base image %s imported", spec.tag)
    return spec.tag


def _trim(root: Path) -> None:
    """Drop what only the bootstrap needed: downloaded .debs, apt lists, logs."""
    for pattern in ("var/cache/apt/archives/*.deb", "var/lib/apt/lists/*", "var/log/*.log", "debootstrap"):
        for path in root.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
