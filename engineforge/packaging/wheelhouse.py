"""Python dependencies for an image, as a wheelhouse built on the host.

`pip install` inside a build fails TLS verification on our machines (the host's CA bundle is not in
the image) and air-gapped users have no index at all, so wheels are resolved and built here, with
the host's pip configuration, copied into the build context, and installed with `--no-index`.
A wheelhouse is cached by the hash of (requirement list, target Python); the first resolution on a
machine is what every later image with the same list gets, and `wheelhouse.lock` names it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from engineforge.errors import UserError
from engineforge.artifacts.store import clone_file
from engineforge.settings import settings

log = logging.getLogger(__name__)

LOCK_NAME = "wheelhouse.lock"


def cache_root() -> Path:
    return settings().CACHE.expanduser()


def wheelhouse_key(requirements: list[str], python: str) -> str:
    payload = {"requirements": sorted(r.strip() for r in requirements), "python": python, "format": 1}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def host_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def pip_argv(requirements_file: Path, dest: Path, python: str) -> list[str]:
    """`pip wheel` when the image's Python is the host's (sdists get built); else binary-only download."""
    base = [sys.executable, "-m", "pip", "--quiet"]
    if python == host_python():
        return [*base, "wheel", "--wheel-dir", str(dest), "-r", str(requirements_file)]
    return [
        *base, "download", "--dest", str(dest), "--only-binary=:all:", "--implementation", "cp",
        "--python-version", python, "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64",
        "-r", str(requirements_file),
    ]


def ensure_wheelhouse(requirements: list[str], python: str, root: Path | None = None) -> Path:
    """The cached wheelhouse directory for these requirements, built first if missing."""
    root = Path(root) if root else cache_root() / "wheelhouse"
    target = root / wheelhouse_key(requirements, python)[:16]
    if (target / LOCK_NAME).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".building-", dir=root) as tmp:
        staging = Path(tmp) / "wheels"
        staging.mkdir()
        reqs = Path(tmp) / "requirements.txt"
        reqs.write_text("".join(f"{line}\n" for line in requirements))
        argv = pip_argv(reqs, staging, python)
        log.info("building wheelhouse for Python %s: %s", python, " ".join(requirements))
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")] or done.stderr.splitlines()[-1:]
            cause = errors[0] if errors else f"pip exited with {done.returncode}"
            raise UserError(f"package python_requirements {requirements}: could not build the wheelhouse ({cause}); check the pins and the pip index/find-links")
        names = sorted(p.name for p in staging.glob("*.whl"))
        (staging / LOCK_NAME).write_text("".join(f"{n}\n" for n in names))
        try:
            staging.rename(target)
        except OSError:
            if not (target / LOCK_NAME).is_file():  # lost a race to another builder is fine
                raise
    return target


def copy_tree(source: Path, dest: Path, world_readable: bool = False) -> None:
    """Copy a directory tree into a build context file by file with `store.clone_file` (a
    copy-on-write clone where the filesystem has them, else the kernel's copy), never a hard link: the
    context is part of the package entry, and an inode shared with the build entry or the wheel cache
    would carry damage to one into the other. Each file keeps its source's mode and mtime (the context
    fingerprint reads the mtime); the source is never modified.

    With world_readable, every file and directory gets read permission for all, so a non-root user
    in the image can read them while the source keeps its mode.
    """
    def copy(src: str, dst: str) -> None:
        clone_file(src, dst)
        shutil.copystat(src, dst)
        if world_readable:
            os.chmod(dst, os.stat(dst).st_mode | stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)

    shutil.copytree(source, dest, copy_function=copy, symlinks=False)
    if world_readable:
        for directory in [dest, *(p for p in dest.rglob("*") if p.is_dir())]:
            directory.chmod(0o755)
