"""Model sources: where a recipe's checkpoint comes from, and which exact revision it is.

`hf://ORG/NAME[@REVISION]` resolves REVISION to a commit sha before downloading, so the run
records the sha and a rerun against a moved branch is a different key. Local directories and
`synthetic:` models are identified by the hashes of their contents and spec.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engineforge.sources import hub
from engineforge.errors import UserError
from engineforge.model.roots import check_model_path, model_files
from engineforge.model.shape import CONFIG_FILE
from engineforge.recipe.schema import ModelSpec
from engineforge.artifacts.store import content_key, sha256_file

REQUIRED_FILES = (CONFIG_FILE,)
COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class HubSource:
    repo: str
    revision: str  # as written: a branch, tag or sha

    @property
    def ref(self) -> str:
        return f"hf://{self.repo}@{self.revision}"


@dataclass(frozen=True)
class LocalSource:
    path: Path


@dataclass(frozen=True)
class SyntheticSource:
    name: str


def parse_source(spec: ModelSpec, base_dir: Path | None = None) -> HubSource | LocalSource | SyntheticSource:
    source = spec.source
    if source.startswith("hf://"):
        repo, _, revision = source[len("hf://"):].partition("@")
        return HubSource(repo, revision or "main")
    if source.startswith("synthetic:"):
        return SyntheticSource(source[len("synthetic:"):])
    path = Path(source).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return LocalSource(check_model_path(path.resolve(), source))


def resolve_hub_revision(source: HubSource) -> str:
    """The commit sha `source.revision` points at now, from the hub or the mirror in `$HF_ENDPOINT`
    (read at call time, so a worker's environment decides; network, retried by the tasks)."""
    from huggingface_hub.errors import (
        GatedRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    hub.check_reachable()
    try:
        sha = hub.api().model_info(source.repo, revision=source.revision).sha
    except GatedRepoError:
        raise UserError(f"model.source {source.ref}: the repository is gated; accept its terms and set HF_TOKEN") from None
    except RepositoryNotFoundError:
        raise UserError(
            f"model.source {source.ref}: no such repository (or it is private: set HF_TOKEN)"
        ) from None
    except RevisionNotFoundError:
        raise UserError(f"model.source {source.ref}: no revision {source.revision!r}; use a branch, tag or commit sha") from None
    if not sha or not COMMIT.fullmatch(sha):
        raise UserError(f"model.source {source.ref}: the hub answered no commit sha ({sha!r})")
    return sha


def hub_bytes_to_fetch(source: HubSource, sha: str) -> tuple[int, Path]:
    """(the bytes of the snapshot at `sha` not in the local hub cache yet, the cache they go to), from
    the hub's file list: what a download will write, known before it writes anything."""
    missing = 0
    for entry in hub.api().list_repo_tree(source.repo, revision=sha, recursive=True):
        size = getattr(entry, "size", None)  # folders have none
        if size and hub.cached_file(source.repo, entry.path, sha) is None:
            missing += size
    return missing, hub.cache_dir()


def download_hub_model(source: HubSource, sha: str, on_bytes: Callable[[int, int | None], None]) -> Path:
    """The snapshot at `sha`; `on_bytes(done, total)` hears the bytes written so far of the files started."""
    return hub.download_snapshot(source.repo, revision=sha, tqdm_class=_byte_counter(on_bytes))


def _byte_counter(on_bytes: Callable[[int, int | None], None]):
    """A silent tqdm class for snapshot_download's bars that passes the byte bar's count to `on_bytes`.

    huggingface_hub 2.x opens two byte bars: the files' bytes written (its total grows as each file
    starts) and "Downloading bytes", the network transfer, whose total it only estimates; the first
    is the one a user can read as done/total. Updates arrive from its download threads."""
    import threading

    from tqdm.auto import tqdm

    lock = threading.Lock()

    class ByteCounter(tqdm):
        def __init__(self, *args, **kwargs):
            self.counted = kwargs.get("unit") == "B" and not str(kwargs.get("desc", "")).startswith("Downloading bytes")
            super().__init__(*args, **kwargs | {"disable": True})  # disabled: draws nothing, keeps n and total

        def update(self, n=1):
            with lock:
                self.n += n or 0
                self.refresh()

        def refresh(self, *args, **kwargs):
            if self.counted:
                on_bytes(int(self.n), int(self.total) if self.total else None)

    return ByteCounter


def local_model_digests(source: LocalSource) -> dict[str, str]:
    if not source.path.is_dir():
        raise UserError(f"model.source {source.path}: not a directory; give a Hugging Face model directory")
    missing = [name for name in REQUIRED_FILES if not (source.path / name).is_file()]
    if missing:
        raise UserError(f"model.source {source.path}: missing {', '.join(missing)}; is it a Hugging Face model directory?")
    return {name: sha256_file(source.path / name) for name in model_files(source.path)}


def digest_revision(digests: dict[str, str]) -> str:
    """A revision id for content without a commit: the hash of its file hashes."""
    return "sha256:" + content_key(digests)
