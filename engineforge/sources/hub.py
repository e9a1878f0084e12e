"""The Hugging Face hub, the one place that talks to it: the endpoint (`HF_ENDPOINT`, a mirror), the
token (`HF_TOKEN`) and offline mode (`HF_HUB_OFFLINE`) are decided here for every caller (the model
download, a revision's sha, calibration datasets, the planner's config.json).

Offline mode is huggingface_hub's own flag, read once at its import (huggingface_hub/constants.py,
2.4.0): its HTTP layer refuses every request while it is on whatever a caller passes
(utils/_http.py `OfflineModeIsEnabled`), so this module asks the same flag, and makes no request then.
"""

from __future__ import annotations

from pathlib import Path

from engineforge.errors import NetworkError
from engineforge.settings import hub_settings


PUBLIC_HUB = "https://huggingface.co"


def endpoint() -> str:
    return (hub_settings().ENDPOINT or PUBLIC_HUB).rstrip("/")


def token() -> str | None:
    secret = hub_settings().TOKEN
    return secret.get_secret_value() or None if secret is not None else None


def offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def api():
    """An HfApi for the configured endpoint and token; callers check `offline()` first."""
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint(), token=token())


def check_reachable(timeout_s: float = 10.0) -> None:
    """Fail at once, in one line, when the hub (or `$HF_ENDPOINT`) cannot be reached at all:
    huggingface_hub would retry five times, printing a line each time, then read it as a missing file."""
    import httpx

    if offline():
        return  # offline mode reads the local cache only: the hub's reachability does not matter
    try:
        httpx.head(endpoint(), timeout=timeout_s)
    except (httpx.ConnectError, httpx.ConnectTimeout) as error:
        raise NetworkError(f"network: cannot reach the Hugging Face hub at {endpoint()} ({_words(error)}); "
                           "check the connection, or HF_ENDPOINT for a mirror") from None


def _words(error: BaseException) -> str:
    inner = error.__cause__ or error.__context__
    while inner is not None and not isinstance(inner, OSError):
        inner = inner.__cause__ or inner.__context__
    return inner.strerror if isinstance(inner, OSError) and inner.strerror else str(error) or type(error).__name__


def download_file(repo: str, filename: str, revision: str) -> Path:
    """One file of a model repository, from the cache alone when offline."""
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(repo, filename, revision=revision, endpoint=endpoint(), token=token(),
                                local_files_only=offline()))


def download_snapshot(repo: str, revision: str | None = None, repo_type: str | None = None,
                      allow_patterns: list[str] | None = None, tqdm_class=None) -> Path:
    """A repository's files (those matching `allow_patterns`), from the cache alone when offline."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo, revision=revision, repo_type=repo_type, allow_patterns=allow_patterns,
                                  endpoint=endpoint(), token=token(), local_files_only=offline(),
                                  tqdm_class=tqdm_class))


def cached_file(repo: str, filename: str, revision: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, filename, revision=revision)
    return Path(found) if isinstance(found, str) else None


def cache_dir() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)

