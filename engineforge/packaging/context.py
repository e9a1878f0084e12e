"""The build context: Dockerfile, .dockerignore, requirements + wheelhouse, model files."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from engineforge.errors import UserError
from engineforge.packaging.dockerfile import render_dockerfile
from engineforge.packaging.spec import PackageInputs
from engineforge.packaging.wheelhouse import copy_tree

# Kept out of every image even when a model directory carries them (hub downloads leave .cache/,
# checkouts leave .git/, people leave tokens in .env files).
DOCKERIGNORE = """\
# Written by engineforge: VCS data, caches and credential files never reach an image layer.
**/.git
**/.cache
**/.huggingface
**/__pycache__
**/.ipynb_checkpoints
**/.DS_Store
**/.env
**/.netrc
**/.npmrc
**/.pypirc
**/.docker
**/*.pem
**/id_rsa*
**/id_ed25519*
"""


def check_model_dir(model_dir: Path) -> None:
    if not model_dir.is_dir() or not any(model_dir.iterdir()):
        raise UserError(f"model directory {model_dir}: missing or empty; run the build stage first")


def write_context(
    inputs: PackageInputs, base_image: str, context_dir: Path, wheelhouse: Path | None, created: str | None = None
) -> Path:
    """(Re)create context_dir and return the Dockerfile's path. Model and wheels are copies (clones), never hard links."""
    model_dir = Path(inputs.model_dir)
    check_model_dir(model_dir)
    if context_dir.exists():
        shutil.rmtree(context_dir)
    context_dir.mkdir(parents=True)
    dockerfile = context_dir / "Dockerfile"
    dockerfile.write_text(render_dockerfile(inputs, base_image, created))
    (context_dir / ".dockerignore").write_text(DOCKERIGNORE)
    if inputs.python_requirements:
        (context_dir / "requirements.txt").write_text("".join(f"{r}\n" for r in inputs.python_requirements))
        if wheelhouse is not None:
            copy_tree(wheelhouse, context_dir / "wheelhouse")
    copy_tree(model_dir, context_dir / "model", world_readable=True)
    return dockerfile


def context_fingerprint(context_dir: Path) -> str:
    """sha256 over every context file's path, mode, size and mtime (and the text files' bytes).

    Like git's stat cache: a changed model file changes size or mtime; the Dockerfile, .dockerignore
    and requirements are hashed by content. Cheap enough to run before every build.
    """
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(context_dir):
        dirs.sort()
        for name in sorted(files):
            path = Path(root, name)
            info = path.lstat()
            digest.update(f"{path.relative_to(context_dir)}\0{info.st_mode:o}\0{info.st_size}\0".encode())
            # Files written here (Dockerfile, .dockerignore, requirements.txt) are new each time: hash their bytes.
            digest.update(path.read_bytes() if path.parent == context_dir else f"{info.st_mtime_ns}\0".encode())
    return digest.hexdigest()
