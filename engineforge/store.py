"""The content-addressed store: `<root>/<stage>/<key>/` holds one stage output and its manifest.

A stage writes into a temporary sibling directory and renames it into place only when the
output and its `manifest.json` are complete, so a crash never leaves an entry that looks
finished; an entry exists if and only if its manifest does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

MANIFEST = "manifest.json"


def content_key(*parts: Any) -> str:
    """Hash of everything that determines an output (JSON-serialisable parts, order-insensitive dicts)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def default_root() -> Path:
    return Path(os.environ.get("ENGINEFORGE_STORE", ".engineforge/store")).resolve()


class Store:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else default_root()

    def entry(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def manifest(self, stage: str, key: str) -> dict[str, Any] | None:
        """The finished entry's manifest, or None when there is none."""
        path = self.entry(stage, key) / MANIFEST
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return None

    def failure_dir(self, stage: str) -> Path:
        """Where the last failed attempt of `stage` left its logs (its own directory is discarded)."""
        return self.root / "failed" / stage

    def discard(self, stage: str, key: str) -> None:
        """Remove a finished entry (a forced refresh); the rename keeps readers from seeing half of it."""
        entry = self.entry(stage, key)
        if entry.exists():
            trash = entry.with_name(f".trash-{key}-{uuid.uuid4().hex[:8]}")
            entry.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)

    @contextmanager
    def writing(self, stage: str, key: str) -> Iterator[Path]:
        """Yield a fresh temporary directory; on success it becomes the entry (atomic rename)."""
        final = self.entry(stage, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary = final.with_name(f".tmp-{key}-{uuid.uuid4().hex[:8]}")
        temporary.mkdir()
        try:
            yield temporary
            if not (temporary / MANIFEST).exists():
                raise RuntimeError(f"stage {stage} wrote no {MANIFEST}")
            if final.exists():  # another process finished the same key first; theirs is as good
                shutil.rmtree(temporary)
            else:
                temporary.rename(final)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")


def file_digests(directory: Path) -> dict[str, str]:
    """sha256 of every file under a directory, by relative path (the lock file's model hashes)."""
    digests = {}
    for path in sorted(p for p in Path(directory).rglob("*") if p.is_file()):
        digests[path.relative_to(directory).as_posix()] = sha256_file(path)
    return digests


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
