"""The content-addressed store: `<root>/<stage>/<key>/` holds one stage output and its manifest.

A stage writes into a temporary sibling directory and renames it into place only when the
output and its `manifest.json` are complete, so a crash never leaves an entry that looks
finished. The manifest records every file's sha256, size and mtime: an entry is reused only
while its files still match (size and mtime cheaply, the hash where the mtime moved), and
`engineforge store verify` hashes them all. A replaced entry (a refresh, a repair) is swapped in
with one atomic exchange, so the old one stays whole until the new one is. Temporary directories
are named after their writer (engineforge/processes/owner.py), so those of dead writers can be swept.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import json
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from filelock import FileLock

from engineforge.model.roots import open_regular
from engineforge.processes.owner import Owner
from engineforge.settings import settings, variable

MANIFEST = "manifest.json"
TEMPORARY, TRASH = ".tmp-", ".trash-"
NOT_STAGES = ("failed",)  # top-level directories that hold no entries (besides hidden ones)
FICLONE = 0x40049409  # ioctl: share the blocks copy-on-write (btrfs, XFS); a plain copy elsewhere


def content_key(*parts: Any) -> str:
    """Hash of everything that determines an output (JSON-serialisable parts, order-insensitive dicts)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def default_root() -> Path:
    return settings().STORE.resolve()


class Store:
    def __init__(self, root: Path | None = None, remote: Any = None):
        self.root = Path(root) if root else default_root()
        # Asked for a key this store lacks (engineforge/artifacts/remote_tier.py): fetch(store, stage, key) -> manifest | None
        self.remote = remote

    def entry(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def manifest(self, stage: str, key: str) -> dict[str, Any] | None:
        """The finished entry's manifest, or None when there is none or it cannot be read."""
        try:
            manifest = json.loads((self.entry(stage, key) / MANIFEST).read_text())
        except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError, json.JSONDecodeError):
            return None
        return manifest if isinstance(manifest, dict) else None

    def problems(self, stage: str, key: str, full: bool = False) -> list[str]:
        """What is wrong with an entry (empty: intact). Cheap unless `full`: a file whose size and
        mtime match its record is trusted; one whose mtime moved is hashed."""
        manifest = self.manifest(stage, key)
        if manifest is None:
            return [f"{stage}/{key[:12]}: no readable {MANIFEST}"]
        files = manifest.get("files")
        if not isinstance(files, dict):
            return [f"{stage}/{key[:12]}: {MANIFEST} records no file hashes"]
        # What a reuse reads (stage.py): a manifest without them would fail every later run.
        if not isinstance(manifest.get("summary"), str) or not isinstance(manifest.get("outputs"), dict):
            return [f"{stage}/{key[:12]}: {MANIFEST} lacks its summary or outputs"]
        found = []
        for name, record in files.items():
            if not isinstance(record, dict):
                found.append(f"{stage}/{key[:12]}/{name}: {MANIFEST} holds no file record for it")
                continue
            path = self.entry(stage, key) / name
            try:
                status = path.stat()
            except OSError:
                found.append(f"{stage}/{key[:12]}/{name}: missing")
                continue
            if status.st_size != record.get("size"):
                found.append(f"{stage}/{key[:12]}/{name}: {status.st_size} bytes, recorded {record.get('size')}")
            elif (full or status.st_mtime_ns != record.get("mtime_ns")) and sha256_file(path) != record.get("sha256"):
                found.append(f"{stage}/{key[:12]}/{name}: sha256 differs from the recorded one")
        return found

    def intact(self, stage: str, key: str) -> bool:
        return not self.problems(stage, key)

    def entries(self) -> Iterator[tuple[str, str]]:
        """Every (stage, key) directory in the store, finished or not readable."""
        if not self.root.is_dir():
            return
        for stage_dir in sorted(self.root.iterdir()):
            if stage_dir.is_dir() and not stage_dir.name.startswith(".") and stage_dir.name not in NOT_STAGES:
                for entry in sorted(stage_dir.iterdir()):
                    if entry.is_dir() and not entry.name.startswith("."):
                        yield stage_dir.name, entry.name

    def failure_dir(self, stage: str) -> Path:
        """Where the last failed attempt of `stage` left its logs (its own directory is discarded)."""
        return self.root / "failed" / stage

    def lock(self, stage: str, key: str) -> FileLock:
        """Held while one process computes `key`: another wanting it waits, then reuses the entry.
        The kernel releases it when the holder dies, however it dies."""
        directory = self.root / ".locks"
        directory.mkdir(parents=True, exist_ok=True)
        return FileLock(directory / f"{stage}-{key}.lock", thread_local=False)

    def discard(self, stage: str, key: str) -> None:
        """Remove an entry (a repair); the rename keeps readers from seeing half of it."""
        entry = self.entry(stage, key)
        if entry.exists():
            trash = entry.with_name(_owned_name(TRASH, key))
            entry.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)

    @contextmanager
    def writing(self, stage: str, key: str, replace: bool = False) -> Iterator[Path]:
        """Yield a fresh temporary directory; on success it becomes the entry (atomic rename). With
        `replace`, an existing entry is exchanged for it atomically, then removed."""
        final = self.entry(stage, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        self.sweep(final.parent)
        temporary = final.with_name(_owned_name(TEMPORARY, key))
        temporary.mkdir()
        try:
            yield temporary
            if not (temporary / MANIFEST).exists():
                raise RuntimeError(f"stage {stage} wrote no {MANIFEST}")
            if final.exists() and replace:
                _exchange(temporary, final)  # `temporary` now holds the old entry
            elif not final.exists():
                temporary.rename(final)
            # else another process finished the same key first; theirs is as good
            shutil.rmtree(temporary, ignore_errors=True)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise

    def sweep(self, directory: Path | None = None) -> list[Path]:
        """Remove temporary and trash directories whose writer is dead (in one stage's directory, or
        everywhere); return what was removed."""
        removed = self.leftovers(directory)
        for path in removed:
            shutil.rmtree(path, ignore_errors=True)
        return removed

    def leftovers(self, directory: Path | None = None) -> list[Path]:
        """Temporary and trash directories whose writer is dead (what `sweep` removes)."""
        parents = [directory] if directory else [self.root / stage for stage in _stage_names(self.root)]
        return [path for parent in parents for path in sorted(parent.glob(".*"))
                if (owner := _owner_of(path.name)) is not None and owner.is_dead()]

    def ensure_free_space(self, stage: str, needed_bytes: int | None) -> None:
        """Fail before writing when the store's filesystem cannot hold `needed_bytes` (plus 5 %)."""
        require_free_space(self.root, stage, needed_bytes, variable("STORE"))


def require_free_space(directory: Path, stage: str, needed_bytes: int | None, variable: str) -> None:
    """Fail before writing when `directory`'s filesystem cannot hold `needed_bytes` (plus 5 %);
    the error names `variable`, which puts the directory elsewhere."""
    if not needed_bytes:
        return
    directory.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(directory).free
    if free < needed_bytes * 1.05:
        raise OSError(errno.ENOSPC, f"stage {stage} needs {_size(needed_bytes)} in {directory} and "
                      f"{_size(free)} is free; free space there or point {variable} elsewhere")


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")


def file_records(directory: Path) -> dict[str, dict[str, Any]]:
    """sha256, size and mtime of every file under an entry's directory but its manifest."""
    records = {}
    for path in sorted(p for p in Path(directory).rglob("*") if p.is_file() and not p.is_symlink()):
        name = path.relative_to(directory).as_posix()
        if name != MANIFEST:
            status = path.stat()
            records[name] = {"sha256": sha256_file(path), "size": status.st_size, "mtime_ns": status.st_mtime_ns}
    return records


def file_digests(directory: Path) -> dict[str, str]:
    """sha256 of every file under a directory, by relative path (the lock file's model hashes)."""
    digests = {}
    for path in sorted(p for p in Path(directory).rglob("*") if p.is_file()):
        digests[path.relative_to(directory).as_posix()] = sha256_file(path)
    return digests


def tree_bytes(path: Path) -> int:
    """Bytes of the files under `path` (links followed: a hub snapshot's files live in its cache)."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def clone_file(source: str | Path, target: str | Path) -> None:
    """Copy a file into another entry without sharing its inode (a hard link would let corruption of
    one entry reach the other): a copy-on-write clone where the filesystem has them, else the kernel's
    copy. Links are followed (a hub snapshot's files link into its cache); a FIFO or device is refused."""
    with open_regular(Path(source)) as src, open(target, "wb") as dst:
        try:
            fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
            return
        except OSError:
            pass
        size, done = os.fstat(src.fileno()).st_size, 0
        while done < size and (sent := os.sendfile(dst.fileno(), src.fileno(), done, size - done)):
            done += sent  # sendfile: no bytes through Python


def clone_tree(source: Path, target: Path, ignore=None) -> None:
    shutil.copytree(source, target, copy_function=clone_file, ignore=ignore, symlinks=False)


def _owned_name(prefix: str, key: str) -> str:
    return f"{prefix}{key}.{Owner.current().token()}.{uuid.uuid4().hex[:8]}"


def _owner_of(name: str) -> Owner | None:
    for prefix in (TEMPORARY, TRASH):
        if name.startswith(prefix):
            parts = name[len(prefix):].split(".")
            return Owner.parse(".".join(parts[1:5])) if len(parts) == 6 else None
    return None


def _stage_names(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return [p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name not in NOT_STAGES]


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> None:
    """Swap two directories in one step (renameat2 RENAME_EXCHANGE); where the kernel or filesystem
    cannot, move `b` aside and `a` into place (a kill between the two loses `b`'s name only)."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is not None and renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return
    aside = b.with_name(_owned_name(TRASH, b.name))
    b.rename(aside)
    a.rename(b)
    aside.rename(a)


def _size(count: float) -> str:
    return f"{count / 2**30:.2f} GiB" if count >= 2**30 else f"{count / 2**20:.1f} MiB"
