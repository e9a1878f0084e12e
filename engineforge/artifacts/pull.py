"""A registered model version's files on this host: NAME@ALIAS or NAME/VERSION, verified.

What is downloaded must match its MANIFEST.json, and that MANIFEST.json the digest recorded out of
band three times: the logging run's tag and the registered version's tag in the tracking database,
and the `logged` record of the lock file of the run that registered the version (itself checked
against that run's `lock_sha256` tag, the digest the serving image carries as a label). Whoever
rewrites the artifacts (a weight and the MANIFEST.json that vouches for it, or the lock file) changes
none of them; whoever rewrites one tag disagrees with the others.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from engineforge.artifacts import lockfile
from engineforge.tracking import mlflow_runs, mlflow_tags
from engineforge.tracking.mlflow_runs import TrackedRun
from engineforge.artifacts import manifest, transfer
from engineforge.errors import UserError
from engineforge.model.roots import read_regular

LOCK_LIMIT = 16 << 20  # a lock file is tens of KiB; this one is read from the artifact store
REFERENCE = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:@(?P<alias>[A-Za-z0-9_-]+)|/(?P<version>[0-9]+))?")


def resolve(uri: str, reference: str):
    """The model version `reference` names (no alias or version: `candidate`)."""
    from mlflow.exceptions import MlflowException

    match = REFERENCE.fullmatch(reference)
    if match is None:
        raise UserError(f"{reference!r} is not NAME, NAME@ALIAS or NAME/VERSION")
    name, alias, version = match["name"], match["alias"], match["version"]
    client = mlflow_runs.client(uri)
    try:
        if version:
            return client.get_model_version(name, version)
        return client.get_model_version_by_alias(name, alias or mlflow_runs.CANDIDATE_ALIAS)
    except MlflowException as error:
        raise UserError(f"{reference}: no such model version in {uri} ({error.error_code})") from error


def pull(uri: str, reference: str, target: Path):
    """Download the version's files into the empty or new directory `target`; return the version."""
    found = resolve(uri, reference)
    if not found.source.startswith(("runs:/", "mlflow-artifacts:")):
        raise UserError(f"{found.name} version {found.version} is {found.source}, on the host that built it, not "
                        "in the tracking server's artifacts; rebuild with tracking.log_engine: always")
    if target.exists() and any(target.iterdir()):
        raise UserError(f"{target} is not empty; pull into a new directory")
    digest = transfer.recorded_manifest_digest(uri, found.source, "build")
    if digest is None:
        raise UserError(f"{found.name} version {found.version}: its run recorded no {mlflow_tags.manifest_sha256('build')} "
                        "tag, so its MANIFEST.json cannot be checked against anything but itself; rebuild with this engineforge")
    locked_by = found.tags.get(mlflow_tags.REGISTERED_BY_TAG) or found.run_id
    locked = locked_entry(TrackedRun(uri, locked_by), "build")
    if locked != {"uri": found.source, "manifest_sha256": digest}:
        raise transfer.ArtifactMismatch(
            f"{lockfile.LOCK_FILE} of run {locked_by} records the engine as {locked.get('uri')} with {manifest.MANIFEST} "
            f"sha256 {locked.get('manifest_sha256')}, the tracking database {found.source} with {digest}; nothing was pulled")
    _check_version_tag(found, digest)
    transfer.download(uri, found.source, target, found.tags.get(mlflow_tags.CONTENT_KEY_TAG), digest)
    return found


def _check_version_tag(found, digest: str) -> None:
    """The version's own copy of the MANIFEST.json digest (set when it was registered) must be the logging run's."""
    tag = mlflow_tags.manifest_sha256("build")
    pinned = found.tags.get(tag)
    if pinned is None:
        raise UserError(f"{found.name} version {found.version} carries no {tag} tag (registered before engineforge "
                        "recorded it); run its recipe again, which adds it, then pull")
    if pinned != digest:
        raise transfer.ArtifactMismatch(
            f"{found.name} version {found.version}: its {tag} tag records {manifest.MANIFEST} sha256 {pinned}, the run "
            f"that logged {found.source} {digest}; nothing was pulled")


def locked_entry(mlflow_run: TrackedRun, stage: str) -> dict:
    """The lock file of the run, checked against the `lock_sha256` tag the run recorded in the
    tracking database: its `logged` record of `stage` ({"uri", "manifest_sha256"})."""
    from mlflow.exceptions import MlflowException

    name = f"{lockfile.LOCK_FILE} of run {mlflow_run.run_id}"
    recorded = mlflow_run.read().data.tags.get(mlflow_tags.LOCK_SHA256_TAG)
    if recorded is None:
        raise UserError(f"run {mlflow_run.run_id} recorded no {mlflow_tags.LOCK_SHA256_TAG} tag (it never finished); rebuild")
    with tempfile.TemporaryDirectory() as scratch:
        try:
            path = transfer.download_file(mlflow_run, lockfile.LOCK_FILE, Path(scratch))
            lock = _lock_matching(read_regular(path, LOCK_LIMIT), recorded)
        except (MlflowException, OSError) as error:
            raise UserError(f"{name} cannot be read ({type(error).__name__}); rebuild") from None
        except UserError:  # larger than any lock file
            lock = None
    if lock is None:
        raise transfer.ArtifactMismatch(f"{name} differs from the {mlflow_tags.LOCK_SHA256_TAG} tag its run recorded in the "
                                        "tracking database; nothing was pulled")
    entry = lock.get("logged", {}).get(stage) if isinstance(lock.get("logged"), dict) else None
    if not isinstance(entry, dict):
        raise UserError(f"{name} records no {manifest.MANIFEST} digest for {stage} (written before engineforge recorded it); "
                        "rebuild with this engineforge")
    return entry


def _lock_matching(data: bytes, recorded: str) -> dict | None:
    """The lock file `data` holds when its core hashes to `recorded`; None for anything else."""
    try:
        lock = json.loads(data)
        return lock if lockfile.core_digest(lockfile.core_of(lock)) == recorded else None
    except (ValueError, RecursionError, TypeError, AttributeError, KeyError):  # not a lock file's shape
        return None
