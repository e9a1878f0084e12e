"""Which local directories a recipe's `model.source` (and other local paths) may name on this host,
and what such a directory may hold (`model_files`, `open_regular`: below).

A submitted recipe is untrusted input on a worker: its local path must not read whatever the
worker can read. `ENGINEFORGE_MODEL_ROOTS` (directories separated by os.pathsep) lists where local
models may live; unset means no limit (a user running their own recipes), and `engineforge worker`
sets it to the empty list unless the operator set it, so workers read no local directory by default.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from engineforge.errors import UserError
from engineforge.settings import settings, variable

ROOTS_ENV = variable("MODEL_ROOTS")


def allowed_roots() -> list[Path] | None:
    """The resolved roots, or None when this host sets no limit."""
    value = settings().MODEL_ROOTS
    if value is None:
        return None
    return [Path(entry).expanduser().resolve() for entry in value.split(os.pathsep) if entry.strip()]


def check_model_path(path: Path, source: str, field: str = "model.source") -> Path:
    """`path` (already resolved: symlinks and `..` followed) if it lies under an allowed root; `field`
    names the recipe field that gave it (a model directory, or a data file such as calibration text)."""
    roots = allowed_roots()
    if roots is None or any(path == root or path.is_relative_to(root) for root in roots):
        return path
    where = ", ".join(map(str, roots)) if roots else "none"
    raise UserError(
        f"{field} {source}: local paths on this host must be under {ROOTS_ENV} ({where}); "
        "move the files there, ask the operator to allow their directory, or use hf://ORG/NAME"
    )


# What a local model directory may hold. Its files are untrusted too: whoever writes under the
# allowed roots fills them. Everything engineforge hashes, copies into the store, a build context or
# MLflow must be a regular file inside the directory: a symlink that leaves it would carry what it
# names (`/etc/shadow`, `~/.ssh/id_ed25519`) into images and artifacts, a FIFO blocks its reader
# forever, a device (`/dev/zero`) never ends. A symlink that resolves to a regular file inside the
# directory is accepted (it names bytes the directory already holds, and the store's copies turn it
# into a file); every other link, FIFO, socket or device is refused before anything is opened.
MAX_MODEL_FILES = 10_000  # a 405B checkpoint has ~200; the walk stops well before it costs anything


def model_files(directory: Path) -> list[str]:
    """The relative names of the regular files under `directory` (sorted), or a one-line UserError
    naming the first entry it may not hold. Only `lstat` is used: nothing is opened."""
    root = Path(os.path.realpath(directory))
    if not root.is_dir():
        raise UserError(f"{directory}: not a directory with a config.json; point it at a Hugging Face model directory")
    names: list[str] = []
    pending = [root]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                path = Path(entry.path)
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISDIR(mode):
                    pending.append(path)
                elif stat.S_ISREG(mode) or (stat.S_ISLNK(mode) and _link_inside(path, root)):
                    names.append(path.relative_to(root).as_posix())
                else:
                    raise UserError(f"{directory / path.relative_to(root)}: {_kind(mode)}; a model directory may "
                                    "hold only regular files and directories: remove it, or copy the real file in")
                if len(names) > MAX_MODEL_FILES:
                    raise UserError(f"{directory}: more than {MAX_MODEL_FILES:,} files; a model directory holds a few hundred")
    return sorted(names)


def _link_inside(link: Path, root: Path) -> bool:
    """A symlink is acceptable when it resolves to a regular file inside `root`."""
    target = Path(os.path.realpath(link))
    try:
        return target.is_relative_to(root) and stat.S_ISREG(target.lstat().st_mode)
    except OSError:  # dangling
        return False


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symlink to something outside the model directory (or to no regular file)"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular(path: Path) -> BinaryIO:
    """`path` opened for reading (links followed: hub snapshots link into their cache) when it is a
    regular file; a FIFO or device is refused by its `stat`, never opened. FileNotFoundError passes through."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise UserError(f"{path}: {_kind(mode)}; expected a regular file")
    # O_NONBLOCK: should a FIFO be swapped in after the stat, opening it does not wait for a writer.
    handle = os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb")
    mode = os.fstat(handle.fileno()).st_mode
    if not stat.S_ISREG(mode):
        handle.close()
        raise UserError(f"{path}: {_kind(mode)}; expected a regular file")
    return handle


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of the regular file `path` (`open_regular`), read no further than `limit`."""
    with open_regular(path) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UserError(f"{path}: larger than {limit:,} bytes; more than engineforge reads of this file")
    return data
