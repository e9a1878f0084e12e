"""A registered model version's files on this host: NAME@ALIAS or NAME/VERSION, verified."""

from __future__ import annotations

import re
from pathlib import Path

from engineforge.tracking import mlflow_runs, mlflow_tags
from engineforge.artifacts import transfer
from engineforge.errors import UserError

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
    transfer.download(uri, found.source, target, found.tags.get(mlflow_tags.CONTENT_KEY_TAG), digest)
    return found
